// Image pads in chat prompts: a Qwen3-VL directory medix writes renders image parts as vision markers
// (its own template when the tokenizer files that came along have a text-only one), and
// encodeChatPrompt repeats each image's <|image_pad|> to the image's token count, in order, as
// transformers' processor does; pads and images that disagree are an error naming both counts.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Model } from '../../src/engine/model.js';
import { writeModelMetadata } from '../../src/model/save.js';
import { MODEL_PRESETS } from '../../src/model/presets.js';
import {
  defaultTokenizerDir,
  encodeChatPrompt,
  expandImagePads,
  IMAGE_PAD,
  loadTokenizer,
} from '../../src/tokenizer/index.js';
import type { ChatMessage } from '../../src/tokenizer/index.js';

function modelDir(t: Test, withVision: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'medix-image-pads-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { vision, mropeSection, ...text } = MODEL_PRESETS['tiny-vl'];
  const tower = { ...vision, deepstackIndexes: [0] };
  const vl = { ...text, imageTokenId: 60, mropeSection: [...mropeSection], vision: tower };
  const config = { ...(withVision ? vl : MODEL_PRESETS.tiny), vocabSize: 64 };
  writeModelMetadata(Model.create(config), dir, { tokenizerDir: defaultTokenizerDir() });
  return dir;
}

const chat: ChatMessage[] = [
  { role: 'system', content: 'Answer briefly.' },
  {
    role: 'user',
    content: [
      { type: 'text', text: 'Compare ' },
      { type: 'image' },
      { type: 'text', text: ' and ' },
      { type: 'image_url', image_url: { url: 'data:,' } },
      { type: 'text', text: '.' },
    ],
  },
];

t.test("a Qwen3-VL directory renders image parts in place; the pads expand to each image's tokens", async (t) => {
  const tok = await loadTokenizer(modelDir(t, true));
  const { text, ids } = encodeChatPrompt(tok, chat, { addGenerationPrompt: true, enableThinking: false }, [4, 6]);
  t.equal(
    text,
    '<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nCompare ' +
      '<|vision_start|><|image_pad|><|vision_end|> and <|vision_start|><|image_pad|><|vision_end|>.<|im_end|>\n' +
      '<|im_start|>assistant\n<think>\n\n</think>\n\n',
  );
  const pad = tok.encode(IMAGE_PAD, { addSpecialTokens: false })[0];
  const plain = tok.encode(text, { addSpecialTokens: false });
  const at = plain.indexOf(pad),
    second = plain.indexOf(pad, at + 1);
  t.same(
    ids,
    [
      ...plain.slice(0, at),
      ...Array(4).fill(pad),
      ...plain.slice(at + 1, second),
      ...Array(6).fill(pad),
      ...plain.slice(second + 1),
    ],
    'the first pad becomes 4, the second 6; nothing else changes',
  );
  const hi: ChatMessage[] = [{ role: 'user', content: 'hi' }];
  t.same(
    encodeChatPrompt(tok, hi, {}).ids,
    tok.encode(tok.applyChatTemplate(hi), { addSpecialTokens: false }),
    'a text chat as encoded',
  );
});

t.test('pads and images must agree; a text model keeps its text template, which refuses images', async (t) => {
  t.throws(() => expandImagePads([1, 9, 2], 9, [4, 4]), /wrote 1 <\|image_pad\|> token\(s\) for 2 image\(s\)/);
  t.same(expandImagePads([9, 1, 9], 9, [2, 1]), [9, 9, 1, 9]);
  const dir = modelDir(t, false);
  t.throws(() => readFileSync(join(dir, 'chat_template.jinja')), { code: 'ENOENT' }, 'no template written');
  const tok = await loadTokenizer(dir);
  t.throws(() => encodeChatPrompt(tok, chat, {}, [4, 6]), /has no image support/);
});
