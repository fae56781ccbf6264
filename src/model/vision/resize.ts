// Bicubic resize of 8-bit RGB as Pillow and torchvision (antialias=True, uint8) compute it, so images
// reach the vision tower with the pixel values transformers' Qwen-VL processor gives: separable passes,
// horizontal then vertical, each rounding to 8 bits; the cubic kernel (a = -0.5) is widened by the scale
// when shrinking (antialiasing); pixel centres at +0.5; weights normalised and held in 22-bit fixed point.

const PRECISION_BITS = 22;

function cubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Taps {
  first: Int32Array;
  count: Int32Array;
  /** [out, maxCount] fixed-point weights. */
  weights: Int32Array;
  maxCount: number;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const maxCount = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize),
    count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * maxCount);
  const w = new Float64Array(maxCount);
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    const lo = Math.max(Math.trunc(centre - support + 0.5), 0);
    const n = Math.min(Math.trunc(centre + support + 0.5), inSize) - lo;
    let total = 0;
    for (let k = 0; k < n; k++) total += w[k] = cubic((k + lo - centre + 0.5) / filterScale);
    for (let k = 0; k < n; k++) {
      const v = total !== 0 ? (w[k] / total) * (1 << PRECISION_BITS) : 0;
      weights[o * maxCount + k] = v < 0 ? Math.trunc(v - 0.5) : Math.trunc(v + 0.5);
    }
    first[o] = lo;
    count[o] = n;
  }
  return { first, count, weights, maxCount };
}

function clip8(acc: number): number {
  const v = Math.floor(acc / (1 << PRECISION_BITS));
  return v < 0 ? 0 : Math.min(v, 255);
}

/** One pass along x (horizontal) or y (vertical) of an interleaved RGB image. */
function pass(src: Uint8Array, w: number, h: number, outW: number, outH: number, horizontal: boolean): Uint8Array {
  const t = horizontal ? taps(w, outW) : taps(h, outH);
  const out = new Uint8Array(outW * outH * 3);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < outH; y++)
    for (let x = 0; x < outW; x++) {
      const o = horizontal ? x : y;
      const base = o * t.maxCount;
      for (let c = 0; c < 3; c++) {
        let acc = half;
        for (let k = 0; k < t.count[o]; k++) {
          const i = t.first[o] + k;
          acc += src[(horizontal ? y * w + i : i * w + x) * 3 + c] * t.weights[base + k];
        }
        out[(y * outW + x) * 3 + c] = clip8(acc);
      }
    }
  return out;
}

/** RGB bytes (3 per pixel, row-major) resized to outW x outH. */
export function resizeBicubic(rgb: Uint8Array, width: number, height: number, outW: number, outH: number): Uint8Array {
  let data = rgb;
  if (outW !== width) data = pass(data, width, height, outW, height, true);
  if (outH !== height) data = pass(data, outW, height, outW, outH, false);
  return data === rgb ? Uint8Array.from(rgb) : data;
}
