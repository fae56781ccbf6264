// `medix serve` as a user runs it: a saved model directory, flags, and SIGTERM while a stream is
// being answered: the stream completes, new connections are refused, the process exits 0. A Qwen3-VL
// directory with --allow-local-images and --max-image-bytes from the command line.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Model } from '../../src/engine/model.js';
import { writeRandomModelDir } from '../../src/model/random-model-dir.js';
import { saveModel } from '../../src/model/save.js';
import { defaultTokenizerDir, loadTokenizer } from '../../src/tokenizer/index.js';
import { tinyQwen3Config } from '../helpers/tiny-config.js';

const medix = join(import.meta.dirname, '../../src/cli/medix.ts');
const vocabSize = (await loadTokenizer()).vocabSize;
const root = mkdtempSync(join(tmpdir(), 'medix-serve-cli-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'tiny-qwen3');
const config = { ...tinyQwen3Config, vocabSize };
saveModel(Model.create(config, { seed: 9 }), dir, { dtype: 'f32', tokenizerDir: defaultTokenizerDir() });

/**
 * `medix serve ARGS --port 0` in a child process, killed at the end of `t` if still running (registered
 * before its URL is awaited, so a server that never starts is killed too); its base URL once it prints
 * it, its exit, and its stdout so far.
 */
async function startServe(t: Test, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', medix, 'serve', ...args, '--port', '0'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(stdout);
      if (m) resolve(m[1]);
    });
    void exited.then((code) => reject(new Error(`medix serve exited ${code}: ${stderr}`)));
  });
  return { child, url, exited, stdout: () => stdout };
}

t.test('flags, auth from the environment, SIGTERM drains the stream in flight and exits 0', async (t) => {
  const { child, url, exited, stdout } = await startServe(
    t,
    ['--model', dir, '--served-model-name', 'tiny', '--no-enable-thinking', '--max-tokens-cap', '300'],
    { MEDIX_API_KEY: 'from-env' },
  );

  t.equal((await fetch(`${url}/v1/models`)).status, 401, 'MEDIX_API_KEY is required');
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'from-env', maxRetries: 0 });
  t.same(
    (await client.models.list()).data.map((m) => m.id),
    ['tiny'],
    '--served-model-name',
  );
  const promptTokens = async (enable_thinking?: boolean) => {
    const body = {
      model: 'tiny',
      messages: [{ role: 'user', content: 'Name the imaging plane.' }],
      max_tokens: 1,
      ...(enable_thinking === undefined ? {} : { chat_template_kwargs: { enable_thinking } }),
    };
    return (await client.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming)).usage!
      .prompt_tokens;
  };
  t.equal(await promptTokens(), await promptTokens(false), '--no-enable-thinking is the default for chats');
  t.not(await promptTokens(true), await promptTokens(false), 'a request can still turn thinking on');

  const stream = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'user', content: 'Describe the film.' }],
    max_tokens: 1000,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let signalled = false;
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    if (!signalled) {
      signalled = true;
      child.kill('SIGTERM');
    }
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  t.match(stdout(), /shutting down after in-flight requests/, 'the server was shutting down before the stream ended');
  t.equal(finish, 'length', 'the stream in flight was answered to the end');
  t.equal(usage?.completion_tokens, 300, 'max_tokens capped by --max-tokens-cap');
  t.equal(await exited, 0, 'then the process exits 0');
  await t.rejects(fetch(`${url}/health`), 'no longer listening');
});

t.test('a Qwen3-VL directory: --allow-local-images and the image limits on the command line', async (t) => {
  const vl = join(root, 'tiny-vl');
  await writeRandomModelDir(vl, { preset: 'tiny-vl', seed: 3 });
  const allowed = join(root, 'scans');
  mkdirSync(allowed);
  const images = join(import.meta.dirname, '../fixtures/hf/images');
  for (const f of ['a.png', 'c.png']) cpSync(join(images, f), join(allowed, f));
  // a.png is 14,536 bytes, c.png 70,465: a limit between them lets one through.
  const { child, url, exited } = await startServe(t, [
    '--model',
    vl,
    '--allow-local-images',
    allowed,
    '--max-image-bytes',
    '40000',
  ]);
  const ask = (image: string) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny-vl',
        max_tokens: 2,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: image } },
              { type: 'text', text: 'Which plane?' },
            ],
          },
        ],
      }),
    });
  const ok = await ask(`file://${join(allowed, 'a.png')}`);
  t.equal(ok.status, 200, 'a file in the allowed folder is read');
  t.equal((await ok.json()).usage.completion_tokens, 2);
  const big = await ask(join(allowed, 'c.png'));
  t.equal(big.status, 400, 'an image over --max-image-bytes is refused');
  t.match(await big.text(), '--max-image-bytes 40000');
  const outside = await ask(join(images, 'b.png'));
  t.equal(outside.status, 400, 'a file outside the allowed folder is refused');
  t.match(await outside.text(), 'the --allow-local-images directory');
  child.kill('SIGTERM');
  t.equal(await exited, 0);
});
