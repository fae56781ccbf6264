// Loading tokenizers from model directories: which file supplies what (eos ids, pad id, chat
// template), and bad input refused with the file and field named.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { defaultTokenizerDir, loadTokenizer, TokenizerError, type ChatMessage } from '../../src/tokenizer/index.js';

const qwen3Config = JSON.parse(
  readFileSync(path.join(defaultTokenizerDir(), 'tokenizer_config.json'), 'utf8'),
) as Record<string, unknown>;
const IM_END = 151645;
const ENDOFTEXT = 151643;

/**
 * A model directory holding the real Qwen3 tokenizer.json (linked) unless `files` replaces it, a
 * tokenizer_config.json (Qwen3's, with `config` overrides; null values delete a field), and `files`.
 */
function modelDir(t: Test, config: Record<string, unknown> = {}, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'medix-tok-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  if (!('tokenizer.json' in files))
    symlinkSync(path.join(defaultTokenizerDir(), 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  const merged: Record<string, unknown> = { ...qwen3Config, ...config };
  for (const [k, v] of Object.entries(config)) if (v === null) delete merged[k];
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(merged));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

const conversation: ChatMessage[] = [{ role: 'user', content: 'Hi' }];

t.test('missing and corrupt files are named', async (t) => {
  const empty = mkdtempSync(path.join(tmpdir(), 'medix-tok-'));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const missing = await loadTokenizer(empty).catch((err: unknown) => err);
  t.ok(missing instanceof TokenizerError, 'a TokenizerError');
  t.match(missing, { name: 'TokenizerError', message: `${path.join(empty, 'tokenizer.json')}: cannot read` });

  const badConfig = modelDir(t);
  writeFileSync(path.join(badConfig, 'tokenizer_config.json'), '{"eos_token": "<|im_end|>",');
  await t.rejects(loadTokenizer(badConfig), { message: /tokenizer_config\.json: not valid JSON/ });

  const arrayJson = modelDir(t, {}, { 'tokenizer.json': '[1, 2]' });
  await t.rejects(loadTokenizer(arrayJson), { message: /tokenizer\.json: expected a JSON object/ });

  const noModel = modelDir(t, {}, { 'tokenizer.json': '{"version": "1.0", "added_tokens": []}' });
  await t.rejects(loadTokenizer(noModel), { message: /tokenizer\.json: field "model" must be an object/ });

  const unknownModel = modelDir(
    t,
    {},
    { 'tokenizer.json': '{"model": {"type": "NoSuchModel", "vocab": {}}, "added_tokens": []}' },
  );
  await t.rejects(loadTokenizer(unknownModel), { message: /tokenizer\.json: @huggingface\/tokenizers cannot load it/ });

  const badGeneration = modelDir(t, {}, { 'generation_config.json': 'eos_token_id = 2' });
  await t.rejects(loadTokenizer(badGeneration), { message: /generation_config\.json: not valid JSON/ });
});

t.test('eos ids come from generation_config.json, else from tokenizer_config.json', async (t) => {
  t.same((await loadTokenizer(modelDir(t))).eosTokenIds, [IM_END], 'without generation_config.json: the eos_token');
  const list = modelDir(t, {}, { 'generation_config.json': JSON.stringify({ eos_token_id: [IM_END, ENDOFTEXT] }) });
  t.same((await loadTokenizer(list)).eosTokenIds, [IM_END, ENDOFTEXT], 'a list');
  const single = modelDir(t, {}, { 'generation_config.json': JSON.stringify({ eos_token_id: ENDOFTEXT }) });
  t.same((await loadTokenizer(single)).eosTokenIds, [ENDOFTEXT], 'a single id');
  const outOfRange = modelDir(t, {}, { 'generation_config.json': JSON.stringify({ eos_token_id: [IM_END, 999999] }) });
  await t.rejects(loadTokenizer(outOfRange), {
    message: /generation_config\.json: eos_token_id must be token ids below 151669, got 999999/,
  });
  const objectToken = modelDir(t, { eos_token: { __type: 'AddedToken', content: '<|endoftext|>' } });
  t.same((await loadTokenizer(objectToken)).eosTokenIds, [ENDOFTEXT], 'eos_token written as an AddedToken object');
  const unknown = modelDir(t, { eos_token: '<|no_such_token|>' });
  await t.rejects(loadTokenizer(unknown), {
    message: /tokenizer_config\.json: eos_token "<\|no_such_token\|>" is not in the vocabulary/,
  });
});

t.test('pad id: pad_token, else generation_config.json pad_token_id, else null', async (t) => {
  t.equal((await loadTokenizer(modelDir(t))).padTokenId, ENDOFTEXT);
  t.equal((await loadTokenizer(modelDir(t, { pad_token: null }))).padTokenId, null);
  const fromGeneration = modelDir(
    t,
    { pad_token: null },
    { 'generation_config.json': JSON.stringify({ pad_token_id: IM_END }) },
  );
  t.equal((await loadTokenizer(fromGeneration)).padTokenId, IM_END);
});

t.test('chat template sources', async (t) => {
  const none = await loadTokenizer(modelDir(t, { chat_template: null }));
  t.same(none.encode('Hi'), [13048], 'a directory without a template still encodes');
  t.throws(() => none.applyChatTemplate(conversation), { message: /no chat template/ });

  const named = modelDir(t, {
    chat_template: [
      { name: 'tool_use', template: 'T' },
      { name: 'default', template: 'D{{ messages[0].content }}' },
    ],
  });
  t.equal((await loadTokenizer(named)).applyChatTemplate(conversation), 'DHi', 'the "default" entry of a list');
  const unnamed = modelDir(t, { chat_template: [{ name: 'tool_use', template: 'T' }] });
  await t.rejects(loadTokenizer(unnamed), {
    message: /tokenizer_config\.json: chat_template is a list without .*"default"/,
  });

  const jinja = modelDir(
    t,
    {},
    { 'chat_template.jinja': '{{ bos_token is defined }}|{{ eos_token }}|{{ messages|length }}' },
  );
  t.equal(
    (await loadTokenizer(jinja)).applyChatTemplate(conversation),
    'false|<|im_end|>|1',
    'chat_template.jinja wins; special tokens are variables',
  );

  const broken = modelDir(t, {}, { 'chat_template.jinja': '{% for m in messages %}{{ m.content }' });
  await t.rejects(loadTokenizer(broken), { message: /chat_template\.jinja: chat template does not parse/ });

  const raising = modelDir(t, {}, { 'chat_template.jinja': "{{ raise_exception('only user turns') }}" });
  await t.rejects((async () => (await loadTokenizer(raising)).applyChatTemplate(conversation))(), {
    message: /chat_template\.jinja: rendering the chat template failed \(.*only user turns/,
  });
});

t.test('content parts with a text-only template (Qwen3)', async (t) => {
  const tok = await loadTokenizer();
  const parts = tok.applyChatTemplate([
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Line one' },
        { type: 'text', text: 'Line two' },
      ],
    },
  ]);
  t.equal(
    parts,
    tok.applyChatTemplate([{ role: 'user', content: 'Line one\nLine two' }]),
    'text parts are joined by newlines',
  );
  t.throws(
    () =>
      tok.applyChatTemplate([
        { role: 'system', content: 'S' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'x' },
            { type: 'image', image: 'a.png' },
          ],
        },
      ]),
    {
      message:
        /messages\[1\]\.content\[1\] is an image, but the chat template of .*tokenizer_config\.json \(chat_template\) has no image support/,
    },
  );
});

t.test('malformed messages and ids are refused with the field named', async (t) => {
  const tok = await loadTokenizer();
  t.throws(() => tok.applyChatTemplate([]), { message: /messages must be a non-empty array/ });
  const badRole = [
    { role: 'user', content: 'a' },
    { role: 'doctor', content: 'b' },
  ] as unknown as ChatMessage[];
  t.throws(() => tok.applyChatTemplate(badRole), { message: /messages\[1\]\.role "doctor" is not one of/ });
  const badContent = [{ role: 'user', content: 42 }] as unknown as ChatMessage[];
  t.throws(() => tok.applyChatTemplate(badContent), { message: /messages\[0\]\.content must be a string or an array/ });
  const badPart = [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] as unknown as ChatMessage[];
  t.throws(() => tok.applyChatTemplate(badPart), {
    message: /messages\[0\]\.content\[0\]\.image_url\.url must be a string/,
  });
  t.throws(() => tok.decode([9707, 151669]), {
    message: /decode: ids\[1\] = 151669 is not a token id \(vocabulary size 151669\)/,
  });
  t.throws(() => tok.decode([1.5]), { message: /ids\[0\] = 1\.5/ });
  t.equal(tok.decode([]), '', 'no ids decode to the empty string');
  t.equal(tok.decode(Int32Array.from([9707, 1879])), 'Hello world', 'typed arrays are accepted');
});
