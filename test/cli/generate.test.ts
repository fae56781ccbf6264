// `medix generate` on a model from create-model: what it prints is what the generation engine
// produces for the same prompt and sampling, greedy output repeats, every flag reaches the engine
// or the chat template, and bad flags are refused with their name.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGenerationEngine } from '../../src/generate/engine.js';
import type { GenerationResult, SamplingParams } from '../../src/generate/types.js';
import { loadModel } from '../../src/model/load.js';
import { writeRandomModelDir } from '../../src/model/random-model-dir.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { medix } from './run-medix.js';

const root = mkdtempSync(join(tmpdir(), 'medix-generate-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'tiny');
await writeRandomModelDir(dir, { preset: 'tiny', seed: 2 });
const [model, tokenizer] = await Promise.all([loadModel(dir), loadTokenizer(dir)]);
const engine = createGenerationEngine(model, { tokenizer });
t.teardown(() => engine.close());

const PROMPT = 'Which bone forms the heel?';
const chatIds = (enableThinking = true) =>
  tokenizer.encode(
    tokenizer.applyChatTemplate([{ role: 'user', content: PROMPT }], { addGenerationPrompt: true, enableThinking }),
    { addSpecialTokens: false },
  );
const direct = (promptIds: number[], params: SamplingParams): Promise<GenerationResult> =>
  engine.generate({ promptIds, params });

interface JsonLine {
  index: number;
  text: string;
  finish_reason: string;
  prompt_tokens: number;
  completion_tokens: number;
  token_ids: number[];
}
function generate(...args: string[]) {
  const r = medix('generate', '--model', dir, ...args);
  if (r.status !== 0) throw new Error(`generate failed: ${r.stderr}`);
  return r;
}
const jsonLines = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as JsonLine);

t.test(
  "greedy: the same text every time, the engine's text for the chat-templated prompt, streamed to stdout",
  async (t) => {
    const first = generate('--prompt', PROMPT, '--temperature', '0', '--max-tokens', '12');
    const second = generate('--prompt', PROMPT, '--temperature', '0', '--max-tokens', '12');
    t.equal(first.stdout, second.stdout, 'deterministic');
    const [want] = (await direct(chatIds(), { temperature: 0, maxNewTokens: 12 })).samples;
    t.equal(first.stdout, want.text.endsWith('\n') ? want.text : `${want.text}\n`);
    t.match(first.stderr, `${want.tokenIds.length} tokens, finish_reason ${want.finishReason}`);
  },
);

t.test("--json: one line per completion, the engine's samples for the same seed", async (t) => {
  const { stdout } = generate(
    '--prompt',
    PROMPT,
    '--json',
    '-n',
    '3',
    '--seed',
    '5',
    '--max-tokens',
    '10',
    '--top-k',
    '50',
    '--top-p',
    '0.9',
    '--temperature',
    '1.2',
  );
  const lines = jsonLines(stdout);
  const want = await direct(chatIds(), { n: 3, seed: 5, maxNewTokens: 10, topK: 50, topP: 0.9, temperature: 1.2 });
  t.equal(lines.length, 3);
  lines.forEach((line, i) => {
    const s = want.samples[i];
    t.same(line, {
      index: i,
      text: s.text,
      finish_reason: s.finishReason,
      prompt_tokens: want.promptTokens,
      completion_tokens: s.tokenIds.length,
      token_ids: s.tokenIds,
    });
  });
  t.not(lines[0].text, lines[1].text, 'the samples differ');
});

t.test('prompt flags: --no-enable-thinking and --no-chat change what the model sees', async (t) => {
  const promptTokens = (...flags: string[]) =>
    jsonLines(generate('--prompt', PROMPT, '--json', '--max-tokens', '1', ...flags).stdout)[0].prompt_tokens;
  t.equal(promptTokens(), chatIds().length, 'default: the chat template, thinking on');
  t.equal(promptTokens('--chat', '--enable-thinking'), chatIds().length);
  t.equal(promptTokens('--no-enable-thinking'), chatIds(false).length);
  t.not(chatIds(false).length, chatIds().length, 'thinking off adds the empty think block');
  t.equal(promptTokens('--no-chat'), tokenizer.encode(PROMPT).length, '--no-chat: the raw text');
});

t.test('--stop ends the text before the stop string', async (t) => {
  const [s] = (await direct(chatIds(), { seed: 11, maxNewTokens: 24 })).samples;
  const stop = s.text.slice(Math.floor(s.text.length / 2)).slice(0, 3);
  t.ok(stop.length > 0, `a stop string from the middle of the sampled text: ${JSON.stringify(stop)}`);
  const [line] = jsonLines(
    generate(
      '--prompt',
      PROMPT,
      '--json',
      '--seed',
      '11',
      '--max-tokens',
      '24',
      '--stop',
      'never appears',
      '--stop',
      stop,
    ).stdout,
  );
  t.equal(line.text, s.text.slice(0, s.text.indexOf(stop)));
  t.equal(line.finish_reason, 'stop');
});

t.test('n > 1 without --json: each completion under its own header', async (t) => {
  const { stdout } = generate('--prompt', PROMPT, '-n', '2', '--seed', '3', '--max-tokens', '4');
  const want = await direct(chatIds(), { n: 2, seed: 3, maxNewTokens: 4 });
  t.equal(
    stdout,
    want.samples
      .map(
        (s, i) =>
          `--- completion ${i + 1} of 2 (${s.tokenIds.length} tokens, finish_reason ${s.finishReason}) ---\n${s.text}\n`,
      )
      .join(''),
  );
});

t.test('bad flags are named', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--prompt', 'x', '--temperature', '-1'], /'--temperature <t>' argument '-1' is invalid\. expected a number >= 0/],
    [['--prompt', 'x', '--top-p', '1.5'], /'--top-p <p>' argument '1\.5' is invalid\. expected a number in \(0, 1\]/],
    [['--prompt', 'x', '--n', '0'], /'-n, --n <n>' argument '0' is invalid\. expected a positive integer/],
    [['--prompt', 'x', '--max-tokens', 'ten'], /'--max-tokens <n>' argument 'ten' is invalid/],
    [['--prompt', 'x', '--stop', ''], /'--stop <text>' argument '' is invalid\. expected a non-empty value/],
    [['--prompt', 'x', '--no-chat', '--no-enable-thinking'], /do nothing with --no-chat/],
    [['--prompt', '', '--no-chat'], /--prompt is empty/],
    [[], /required option '--prompt <text>' not specified/],
    [
      ['--prompt', 'x', '--no-chat', '--max-tokens', '40960'],
      /--max-tokens 40960: the prompt's 1 tokens and 40960 new ones exceed the model's context of 40960 tokens/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = medix('generate', '--model', dir, ...args);
    t.equal(r.status, 1, args.join(' '));
    t.match(r.stderr, message);
  }
  const image = join(import.meta.dirname, '..', 'fixtures', 'hf', 'images', 'a.png');
  const textOnly = medix('generate', '--model', dir, '--prompt', 'x', '--image', image);
  t.equal(textOnly.status, 1, '--image with a text-only model');
  t.match(textOnly.stderr, `the model in ${dir} is a text-only model (no vision tower): it cannot take images`);
  const missing = medix('generate', '--model', join(root, 'nowhere'), '--prompt', 'x');
  t.equal(missing.status, 1);
  t.match(missing.stderr, /nowhere.*config\.json/);
});
