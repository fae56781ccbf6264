// Streaming detokenization over the real Qwen3 byte-level BPE: multi-byte characters split over
// tokens never surface as U+FFFD mid-stream, and the deltas always add up to decode(all ids).
import t from 'tap';

import { IncrementalDetokenizer, loadTokenizer } from '../../src/tokenizer/index.js';

const tok = await loadTokenizer();

function stream(ids: number[], skipSpecialTokens = false): { deltas: string[]; flushed: string } {
  const detok = new IncrementalDetokenizer(tok, { skipSpecialTokens });
  const deltas = ids.map((id) => detok.push(id));
  return { deltas, flushed: detok.flush() };
}

const texts: Record<string, string> = {
  // Rare characters (traditional 齲 caries, 蹠 sole, 癤 furuncle, 𩸽 outside the BMP) have no
  // token of their own in Qwen3's vocabulary and are spelled in byte pieces.
  cjk: '肺部CT显示磨玻璃影，建议随访。齲齒 蹠 癤 𩸽。胸部X線写真で異常なし。폐렴 의심',
  emoji: 'Heart 🫀 lungs 🫁 stethoscope 🩺 family 👨‍👩‍👧‍👦 flag 🇺🇳 ok 👍🏽',
  combining: 'Cafe\u0301 ñ vs n\u0303, Zalgo: Z\u0351\u0362a\u0308\u0330l\u0306g\u0303o, Devanagari क्षत्रिय, Thai กำลัง',
  special:
    '<|im_start|>user\nWhat is 🩺?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n听诊器<|im_end|><|endoftext|>',
};

for (const [name, text] of Object.entries(texts)) {
  t.test(`${name}: deltas never split a character and add up to decode()`, async (t) => {
    const ids = tok.encode(text);
    for (const skip of [false, true]) {
      const { deltas, flushed } = stream(ids, skip);
      t.equal(flushed, '', 'nothing is held back at the end of complete text');
      t.notOk(
        deltas.some((d) => d.includes('\uFFFD')),
        'no replacement character in any delta',
      );
      t.equal(
        deltas.join(''),
        tok.decode(ids, { skipSpecialTokens: skip }),
        `concatenation equals decode (skip specials: ${skip})`,
      );
    }
    t.equal(stream(ids).deltas.join(''), text.normalize('NFC'), 'the text comes back (Qwen3 normalises to NFC)');
  });
}

t.test('the texts do split characters over tokens, so the checks above bite', async (t) => {
  for (const name of ['cjk', 'emoji']) {
    const pieces = tok.encode(texts[name]!).map((id) => tok.decode([id]));
    t.ok(
      pieces.some((p) => p.includes('\uFFFD')),
      `${name}: some token alone is an incomplete UTF-8 sequence`,
    );
  }
});

t.test('an emoji arrives whole, with empty deltas while its bytes are incomplete', async (t) => {
  const ids = tok.encode('🩺');
  t.ok(ids.length > 1, 'the emoji spans several tokens');
  const { deltas } = stream(ids);
  t.same(deltas, [...ids.slice(1).map(() => ''), '🩺']);
});

t.test('skipped special tokens emit nothing and keep later text intact', async (t) => {
  const ids = tok.encode('a<|im_end|>b');
  t.same(stream(ids, true).deltas, ['a', '', 'b']);
  t.same(stream(ids, false).deltas, ['a', '<|im_end|>', 'b']);
});

t.test('flush returns an unfinished character the way decode() renders it', async (t) => {
  const ids = tok.encode('x🩺').slice(0, -1);
  const detok = new IncrementalDetokenizer(tok);
  const live = ids.map((id) => detok.push(id)).join('');
  t.equal(live, 'x', 'only the complete prefix is emitted while streaming');
  const rest = detok.flush();
  t.ok(rest.includes('\uFFFD'), 'the dangling bytes are rendered at the end');
  t.equal(live + rest, tok.decode(ids));
  t.equal(detok.text, tok.decode(ids), 'text accumulates the deltas');
  t.same(detok.ids, ids);
});

t.test('random orders of byte-piece tokens (invalid UTF-8 included) still add up to decode()', async (t) => {
  // Tokens of multi-byte text, shuffled: lead and continuation bytes in every order, so the stream
  // sees truncated, overlong and stray sequences. A fixed-seed generator keeps the case reproducible.
  const pool = [...new Set(tok.encode(texts.cjk + texts.emoji + texts.combining))];
  let seed = 12345;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  for (let trial = 0; trial < 200; trial++) {
    const ids = Array.from({ length: 1 + (next() % 24) }, () => pool[next() % pool.length]!);
    const { deltas, flushed } = stream(ids);
    const whole = tok.decode(ids);
    if (deltas.join('') + flushed !== whole) {
      t.fail(
        `trial ${trial}: ids ${JSON.stringify(ids)} stream to ${JSON.stringify(deltas)} + ${JSON.stringify(flushed)}, decode gives ${JSON.stringify(whole)}`,
      );
      return;
    }
  }
  t.pass('200 random sequences matched');
});
