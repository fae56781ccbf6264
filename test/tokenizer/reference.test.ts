// medix's tokenizer against Hugging Face transformers: the fixtures in test/fixtures/tokenizer were
// written by scripts/fixtures/make_tokenizer_fixtures.py (transformers 5.17, tokenizers 0.23) from
// the same Qwen3 tokenizer files medix loads by default. Ids and rendered text must match exactly.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { defaultTokenizerDir, loadTokenizer, type ChatMessage, type TextTokenizer } from '../../src/tokenizer/index.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'tokenizer');
const readFixture = <T>(name: string): T => JSON.parse(readFileSync(path.join(fixtures, name), 'utf8')) as T;

interface EncodeCase {
  name: string;
  text: string;
  ids: number[];
  ids_no_special: number[];
  decoded: string;
  decoded_skip_special: string;
}
interface ChatCase {
  name: string;
  template: string;
  messages: ChatMessage[];
  add_generation_prompt: boolean;
  enable_thinking?: boolean;
  text: string;
  ids: number[];
}
const encodeFixture = readFixture<{
  special: { vocab_size: number; eos_token_id: number; pad_token_id: number; ids: Record<string, number> };
  cases: EncodeCase[];
}>('qwen3_encode.json');
const chatFixture = readFixture<{ cases: ChatCase[] }>('qwen3_chat.json');

const tok = await loadTokenizer();

t.test('encode and decode match transformers on fixed texts', async (t) => {
  for (const c of encodeFixture.cases) {
    t.same(tok.encode(c.text), c.ids, `${c.name}: ids (special tokens added)`);
    t.same(tok.encode(c.text, { addSpecialTokens: false }), c.ids_no_special, `${c.name}: ids (no special tokens)`);
    t.equal(tok.decode(c.ids), c.decoded, `${c.name}: decode`);
    t.equal(
      tok.decode(c.ids, { skipSpecialTokens: true }),
      c.decoded_skip_special,
      `${c.name}: decode skipping special tokens`,
    );
  }
});

t.test('vocabulary size and special ids', async (t) => {
  const { special } = encodeFixture;
  t.equal(tok.vocabSize, special.vocab_size, 'vocabSize is len(tokenizer)');
  t.equal(tok.padTokenId, special.pad_token_id, 'pad is <|endoftext|>');
  // Qwen3's generation_config.json ends generation at <|im_end|> and at <|endoftext|>.
  t.same(tok.eosTokenIds, [special.ids['<|im_end|>'], special.ids['<|endoftext|>']]);
  t.equal(tok.eosTokenIds[0], special.eos_token_id, "the tokenizer's own eos_token comes first");
});

const byTemplate = (template: string): ChatCase[] => chatFixture.cases.filter((c) => c.template === template);

function checkChat(t: Test, tokenizer: TextTokenizer, cases: ChatCase[]): void {
  t.ok(cases.length > 0, 'the fixture has cases for this template');
  for (const c of cases) {
    const options = { addGenerationPrompt: c.add_generation_prompt, enableThinking: c.enable_thinking };
    const label = `${c.name} (generation prompt ${c.add_generation_prompt}, thinking ${c.enable_thinking ?? 'default'})`;
    const text = tokenizer.applyChatTemplate(c.messages, options);
    t.equal(text, c.text, `${label}: rendered text`);
    t.same(tokenizer.encode(text, { addSpecialTokens: false }), c.ids, `${label}: ids`);
  }
}

t.test("Qwen3's own chat template renders as in transformers", async (t) => {
  checkChat(t, tok, byTemplate('model'));
});

t.test('content parts with images reach a template that reads them, as in transformers', async (t) => {
  // A model directory whose chat_template.jinja (which wins over tokenizer_config.json's template,
  // as in transformers) handles content parts the way Qwen3-VL's does.
  const dir = mkdtempSync(path.join(tmpdir(), 'medix-tok-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    symlinkSync(path.join(defaultTokenizerDir(), f), path.join(dir, f));
  copyFileSync(path.join(fixtures, 'vl_style_template.jinja'), path.join(dir, 'chat_template.jinja'));
  checkChat(t, await loadTokenizer(dir), byTemplate('vl_style_template.jinja'));
});

t.test('defaults: generation prompt on, thinking on (Qwen3 thinks unless told not to)', async (t) => {
  const cases = byTemplate('model').filter((c) => c.add_generation_prompt && c.enable_thinking === undefined);
  t.ok(cases.length > 0);
  for (const c of cases) t.equal(tok.applyChatTemplate(c.messages), c.text, c.name);
});
