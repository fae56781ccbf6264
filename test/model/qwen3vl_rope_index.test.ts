// Multimodal rope positions against the ones transformers 5.17 gave the language model for the tiny
// Qwen3-VL fixture (positions.s0: text, image a, text, image b, text; positions.s1: text, image c,
// text) and for the whole packed batch (positions, the text-only sequence numbered 0, 1, 2, ...).
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SafetensorsFile } from '../../src/model/safetensors.js';
import { multimodalPositions, packedMultimodalPositions } from '../../src/model/vision/rope-index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ref = SafetensorsFile.open(path.join(here, '..', 'fixtures', 'hf', 'qwen3vl_tiny', 'reference.safetensors'));
const o = { imageTokenId: 380, merge: 2 };
const tokens = ref.readInt32('tokens');
const cu = ref.readInt32('cu_seqlens');
const grids = [ref.readInt32('image_grid_thw.s0'), ref.readInt32('image_grid_thw.s1')];

t.test('each sequence on its own', async (t) => {
  for (const s of [0, 1]) {
    const got = multimodalPositions(tokens.subarray(cu[s], cu[s + 1]), grids[s], o);
    t.same(Array.from(got), Array.from(ref.readInt32(`positions.s${s}`)), `sequence ${s}`);
  }
});

t.test('the packed batch', async (t) => {
  const all = Int32Array.from([...grids[0], ...grids[1]]);
  t.same(Array.from(packedMultimodalPositions(tokens, cu, all, o)), Array.from(ref.readInt32('positions')));
});

t.test('tokens and grids that disagree are refused', async (t) => {
  const seq = tokens.subarray(cu[1], cu[2]);
  t.throws(() => multimodalPositions(seq, new Int32Array(0), o), /an image token beyond the 0 image/);
  // Image c has grid (1, 8, 6): 12 tokens.
  t.throws(() => multimodalPositions(seq, Int32Array.from([1, 8, 6, 1, 8, 6]), o), /2 image\(s\) given but 1 found/);
  t.throws(() => multimodalPositions(seq, Int32Array.from([1, 8, 8]), o), /image 0 needs 16 consecutive image tokens/);
});
