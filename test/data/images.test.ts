// Image sizing and decoding: Qwen-VL's smart resize against values worked by hand from its formula
// (Python's half-to-even rounding included), visual token counts, and sharp's decode to RGB pixels.
import t from 'tap';
import sharp from 'sharp';
import { decodeImage, imageTokenCount, ImageFault, smartResize } from '../../src/data/index.js';

const bounds = { factor: 32, minPixels: 4 * 32 * 32, maxPixels: 64 * 32 * 32 };

t.test('smartResize: sides become multiples of the factor, the area stays inside the bounds', async (t) => {
  // 50/32 = 1.5625 -> 2 cells, 100/32 = 3.125 -> 3 cells; 64 x 96 = 6144 lies inside [4096, 65536].
  t.same(smartResize({ width: 100, height: 50 }, bounds), { width: 96, height: 64 });
  // 80/32 = 2.5 rounds to the even 2 (Python's round), not 3.
  t.same(smartResize({ width: 80, height: 80 }, bounds), { width: 64, height: 64 });
  // 992 x 512 is above max: beta = sqrt(500000 / 65536) = 2.7621; floor(500 / beta / 32) = 5, floor(1000 / beta / 32) = 11.
  t.same(smartResize({ width: 1000, height: 500 }, bounds), { width: 352, height: 160 });
  // 32 x 32 (each side at least one factor) is below min: beta = sqrt(4096 / 200) = 4.5255; ceil(10 beta / 32) = 2, ceil(20 beta / 32) = 3.
  t.same(smartResize({ width: 20, height: 10 }, bounds), { width: 96, height: 64 });
  t.same(
    smartResize({ width: 200, height: 1 }, { factor: 28, minPixels: 1, maxPixels: 1e7 }),
    { width: 196, height: 28 },
    'ratio 200 is allowed',
  );
  t.throws(() => smartResize({ width: 201, height: 1 }, bounds), ImageFault, 'ratio above 200 is refused');
  t.equal(imageTokenCount({ width: 96, height: 64 }, 32), 6, 'one token per 32 x 32 cell');
});

t.test('decodeImage: RGB pixels at the resized size; alpha dropped, grey expanded', async (t) => {
  const rgba = await sharp({
    create: { width: 100, height: 50, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } },
  })
    .png()
    .toBuffer();
  const d = await decodeImage({ bytes: rgba }, bounds);
  t.same([d.width, d.height, d.original], [96, 64, { width: 100, height: 50 }]);
  t.equal(d.pixels.length, 96 * 64 * 3);
  const colours = new Set<string>();
  for (let i = 0; i < d.pixels.length; i += 3) colours.add(`${d.pixels[i]},${d.pixels[i + 1]},${d.pixels[i + 2]}`);
  t.same([...colours], ['10,200,30'], 'a solid colour stays exactly that colour through the resize');

  const grey = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 77, g: 77, b: 77 } } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
  t.equal((await sharp(grey).metadata()).channels, 1, 'the input really is one channel');
  const g = await decodeImage({ bytes: grey }, bounds);
  t.same(
    [g.width, g.height, g.pixels.length, [...g.pixels.subarray(0, 6)]],
    [64, 64, 64 * 64 * 3, [77, 77, 77, 77, 77, 77]],
  );
});

t.test('decodeImage: pixels keep their place when no resize is needed', async (t) => {
  // Left half red, right half blue, 64 x 32: already on the grid and inside the bounds.
  const raw = Buffer.alloc(64 * 32 * 3);
  for (let y = 0; y < 32; y++)
    for (let x = 0; x < 64; x++) raw.set(x < 32 ? [255, 0, 0] : [0, 0, 255], (y * 64 + x) * 3);
  const png = await sharp(raw, { raw: { width: 64, height: 32, channels: 3 } })
    .png()
    .toBuffer();
  const d = await decodeImage({ bytes: png }, { factor: 32, minPixels: 1024, maxPixels: 65536 });
  t.same([d.width, d.height], [64, 32]);
  t.same(Buffer.from(d.pixels), raw);
});

t.test('decodeImage: an unreadable image is an ImageFault', async (t) => {
  await t.rejects(decodeImage({ bytes: new TextEncoder().encode('GIF89a but not really') }, bounds), ImageFault);
  await t.rejects(decodeImage({ path: '/nonexistent/medix.png' }, bounds), /cannot read image .*ENOENT/);
});
