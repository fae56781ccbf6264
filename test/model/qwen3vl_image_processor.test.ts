// The image pipeline against transformers 5.17's Qwen2VLImageProcessor (test/fixtures/hf/image_processor,
// made by scripts/fixtures/make_vl_moe_fixtures.py from test/fixtures/hf/images): smart_resize over a
// table of sizes and pixel budgets (refusals included), and the processor's pixel values and grids for
// three images: a (96x64) needs no resize and must match exactly up to float32 rounding; b (45x83, scaled
// up) and c (200x150, scaled down) go through the bicubic resize, whose 8-bit rounding lands one grey
// level away from torchvision's on under 2% of the values (one level is 2/255 after std 0.5).
// Rescale and per-channel normalisation follow preprocessor_config.json (checked value by value with
// other statistics than the fixture's), 16-bit grayscale decodes, and bad images are ImageFaults.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import sharp from 'sharp';

import { decodeRgb, ImageFault, smartResize } from '../../src/data/images.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { ImagePool } from '../../src/model/vision/image-pool.js';
import { processImage, readImageProcessorConfig } from '../../src/model/vision/image-processor.js';
import { sameBits } from '../helpers/numeric.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const hf = path.join(here, '..', 'fixtures', 'hf');
const config = readImageProcessorConfig(path.join(hf, 'qwen3vl_tiny', 'preprocessor_config.json'));
const ref = SafetensorsFile.open(path.join(hf, 'image_processor', 'pixel_values.safetensors'));

t.test('smartResize equals transformers smart_resize over the table, refusals included', async (t) => {
  const table = JSON.parse(readFileSync(path.join(hf, 'image_processor', 'smart_resize.json'), 'utf8'));
  for (const r of table) {
    const b = { factor: 32, minPixels: r.min_pixels, maxPixels: r.max_pixels };
    const what = `${r.height}x${r.width} in [${r.min_pixels}, ${r.max_pixels}]`;
    if (r.error) t.throws(() => smartResize({ width: r.width, height: r.height }, b), ImageFault, `${what}: refused`);
    else
      t.same(smartResize({ width: r.width, height: r.height }, b), { width: r.resized[1], height: r.resized[0] }, what);
  }
});

function worst(a: Float32Array, b: Float32Array): { max: number; over: number } {
  let max = 0,
    over = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    if (d > 1e-6) over++;
  }
  return { max, over };
}

for (const name of ['a', 'b', 'c']) {
  t.test(`image ${name}: grid and pixel values as transformers' processor`, async (t) => {
    const got = await processImage({ path: path.join(hf, 'images', `${name}.png`) }, config, `${name}.png`);
    t.same(got.grid, Array.from(ref.readInt32(`image_grid_thw.default.${name}`)), 'grid');
    const want = ref.readFloat32(`pixel_values.default.${name}`);
    t.equal(got.pixels.length, want.length, 'row count x row length');
    const { max, over } = worst(got.pixels, want);
    if (name === 'a') t.ok(max <= 1e-6, `no resize: identical up to float32 rounding (max ${max})`);
    else {
      t.ok(max <= 2 / 255 + 1e-6, `bicubic resize: within one grey level (max ${max.toFixed(5)})`);
      t.ok(over / want.length < 0.02, `under 2% of values differ (${((100 * over) / want.length).toFixed(2)}%)`);
    }
  });
}

t.test('16-bit grayscale (medical exports) decodes to 8-bit RGB', async (t) => {
  // A 16-bit ramp: sample v becomes round(v / 257) in every channel.
  const w = 64,
    h = 64;
  const grey = new Uint16Array(w * h).map((_, i) => (i * 16) % 65536);
  const png = await sharp(grey, { raw: { width: w, height: h, channels: 1 } })
    .toColourspace('grey16')
    .png()
    .toBuffer();
  t.equal((await sharp(png).metadata()).depth, 'ushort', 'the input really is 16-bit');
  const d = await decodeRgb({ bytes: png });
  t.same([d.width, d.height, d.pixels.length], [w, h, w * h * 3]);
  let worstLevel = 0;
  for (let i = 0; i < w * h; i++)
    for (let c = 0; c < 3; c++) worstLevel = Math.max(worstLevel, Math.abs(d.pixels[3 * i + c] - grey[i] / 257));
  // libvips scales by 255/65535 and rounds; within one level of v/257 (not clipped at 255 as PIL would).
  t.ok(worstLevel <= 1, `within one level of v/257 (worst ${worstLevel.toFixed(3)})`);
});

t.test("rescale and per-channel normalisation come from the model's preprocessor_config.json", async (t) => {
  // CLIP's statistics (another family's processor) and a rescale of 1/256 instead of the fixture's 0.5s.
  const dir = mkdtempSync(path.join(tmpdir(), 'medix-preprocessor-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mean = [0.48145466, 0.4578275, 0.40821073],
    std = [0.26862954, 0.26130258, 0.27577711];
  const json = JSON.parse(readFileSync(path.join(hf, 'qwen3vl_tiny', 'preprocessor_config.json'), 'utf8'));
  writeFileSync(
    path.join(dir, 'preprocessor_config.json'),
    JSON.stringify({ ...json, image_mean: mean, image_std: std, rescale_factor: 1 / 256 }),
  );
  const c = readImageProcessorConfig(path.join(dir, 'preprocessor_config.json'));
  const file = path.join(hf, 'images', 'a.png'); // 96x64: no resize
  const got = await processImage({ path: file }, c, 'a.png');
  const { width, pixels: rgb } = await decodeRgb({ path: file });
  // Row r is the patch at merge-block position (block row, block column, row and column inside the
  // block); each row holds channel, frame (the still image twice), y, x.
  const [P, M, T] = [c.patchSize, c.mergeSize, c.temporalPatchSize];
  const [, gh, gw] = got.grid;
  let worstDiff = 0,
    at = 0;
  for (let br = 0; br < gh / M; br++)
    for (let bc = 0; bc < gw / M; bc++)
      for (let ir = 0; ir < M; ir++)
        for (let ic = 0; ic < M; ic++)
          for (let ch = 0; ch < 3; ch++)
            for (let f = 0; f < T; f++)
              for (let y = 0; y < P; y++)
                for (let x = 0; x < P; x++) {
                  const byte = rgb[(((br * M + ir) * P + y) * width + (bc * M + ic) * P + x) * 3 + ch];
                  const want = Math.fround((byte / 256 - mean[ch]) / std[ch]);
                  worstDiff = Math.max(worstDiff, Math.abs(got.pixels[at++] - want));
                }
  t.equal(at, got.pixels.length, 'every value checked');
  t.equal(worstDiff, 0, 'each value is (byte * rescale_factor - image_mean[c]) / image_std[c], rounded once');
});

t.test('a corrupt image is an ImageFault naming the file', async (t) => {
  const bytes = readFileSync(path.join(hf, 'images', 'a.png')).subarray(0, 200);
  await t.rejects(processImage({ bytes }, config, 'scans/broken.png'), {
    name: 'ImageFault',
    message: /^scans\/broken\.png: /,
  });
});

t.test('the worker pool gives the same rows as the calling thread, and a bad image names itself', async (t) => {
  const pool = new ImagePool(config, 2);
  t.teardown(() => pool.close());
  const files = ['a', 'b', 'c'].map((n) => path.join(hf, 'images', `${n}.png`));
  const [pooled, direct] = await Promise.all([
    Promise.all(files.map((f) => pool.process({ path: f }, f))),
    Promise.all(files.map((f) => processImage({ path: f }, config, f))),
  ]);
  for (let i = 0; i < files.length; i++) {
    t.same(pooled[i].grid, direct[i].grid, `${files[i]}: grid`);
    t.ok(sameBits(pooled[i].pixels, direct[i].pixels), `${files[i]}: same pixel rows`);
  }
  await t.rejects(pool.process({ bytes: new Uint8Array([1, 2, 3]) }, 'row 7 image 1'), {
    name: 'ImageFault',
    message: /^row 7 image 1: /,
  });
});
