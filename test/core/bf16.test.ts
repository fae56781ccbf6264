// bf16 <-> f32 conversions on every path this CPU has (scalar, AVX2, AVX512-BF16), bit for bit
// against the direct formula of native/core/bf16.h: round to nearest even, NaN quieted with its sign
// and upper payload, zero and denormal inputs to a signed zero (as VCVTNEPS2BF16 does).
import t from 'tap';

import { bf16Paths, bf16ToF32, f32ToBf16 } from '../../src/engine/bf16.js';
import { rng } from '../helpers/numeric.js';

// The definition, on the bits (Number arithmetic: no 32-bit wrap-around).
function direct(bits: number): number {
  if ((bits & 0x7fffffff) >>> 0 > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  if ((bits & 0x7f800000) === 0) return (bits >>> 16) & 0x8000;
  return Math.floor((bits + 0x7fff + ((bits >>> 16) & 1)) / 65536) & 0xffff;
}

const fromBits = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);

const edges: [string, number, number][] = [
  ['+0', 0x00000000, 0x0000],
  ['-0', 0x80000000, 0x8000],
  ['1', 0x3f800000, 0x3f80],
  ['tie, even below: down', 0x3f808000, 0x3f80],
  ['tie, odd below: up', 0x3f818000, 0x3f82],
  ['just above the tie: up', 0x3f808001, 0x3f81],
  ['just below the tie: down', 0x3f807fff, 0x3f80],
  ['negative tie, odd: up in magnitude', 0xbf818000, 0xbf82],
  ['mantissa carry into the exponent', 0x3fffffff, 0x4000],
  ['largest finite rounds to inf', 0x7f7fffff, 0x7f80],
  ['largest finite below the inf tie stays finite', 0x7f7f7fff, 0x7f7f],
  ['+inf', 0x7f800000, 0x7f80],
  ['-inf', 0xff800000, 0xff80],
  ['quiet NaN', 0x7fc00000, 0x7fc0],
  ['signalling NaN with a low payload is quieted, not made inf', 0x7f800001, 0x7fc0],
  ['negative NaN keeps its sign and upper payload', 0xffa12345, 0xffe1],
  ['smallest denormal: signed zero', 0x00000001, 0x0000],
  ['largest negative denormal: signed zero', 0x807fffff, 0x8000],
  ['smallest normal is exact', 0x00800000, 0x0080],
  ['smallest normal + tie ulp: even, down', 0x00808000, 0x0080],
];

t.test('the direct formula gives the stated results on edge cases', async (t) => {
  for (const [what, bits, want] of edges) t.equal(direct(bits), want, what);
});

t.test('every path converts edge cases and random bits exactly as the direct formula', async (t) => {
  const paths = bf16Paths();
  t.ok(paths.includes('scalar'), `paths here: ${paths.join(', ')}`);
  const r = rng(3);
  // Random bit patterns cover every class; a third of them are forced to ties, denormals, NaNs.
  const random = Array.from({ length: 4099 }, (_, i) => {
    const b = Math.floor(r() * 2 ** 32) >>> 0;
    if (i % 6 === 1) return ((b & 0xffff0000) | 0x8000) >>> 0; // exact tie
    if (i % 6 === 3) return (b & 0x807fffff) >>> 0; // zero exponent: denormal or zero
    if (i % 6 === 5) return (b | 0x7f800000) >>> 0; // inf or NaN
    return b;
  });
  const bits = [...edges.map((e) => e[1]), ...random];
  const want = Uint16Array.from(bits, direct);
  for (const path of paths) {
    // Every length up to 70 checks the vector bodies (8, 16, 32 lanes) and their scalar tails.
    for (let n = 0; n <= 70; n++) {
      const got = f32ToBf16(fromBits(bits.slice(0, n)), path);
      const bad = got.findIndex((h, i) => h !== want[i]);
      if (bad >= 0) t.fail(`${path}, n=${n}: value ${bad} (0x${bits[bad].toString(16)}) -> 0x${got[bad].toString(16)}`);
    }
    const got = f32ToBf16(fromBits(bits), path);
    const bad = got.findIndex((h, i) => h !== want[i]);
    t.equal(bad, -1, `${path}: ${bits.length} values${bad >= 0 ? `, first wrong 0x${bits[bad].toString(16)}` : ''}`);
  }
});

t.test(
  'bf16 -> f32 is exact (the bits shifted up) on every path, and a bf16 value survives the round trip',
  async (t) => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    for (const path of bf16Paths()) {
      const wide = new Uint32Array(bf16ToF32(all, path).buffer);
      t.equal(
        wide.findIndex((w, i) => w !== i * 65536),
        -1,
        `${path}: all 65,536 bf16 values widen to their bits << 16`,
      );
      const back = f32ToBf16(bf16ToF32(all, path), path);
      // Denormal bf16 values flush to zero; every other value, NaNs included, comes back unchanged
      // (a bf16 NaN already has its quiet bit or gets it, so only signalling bf16 NaNs change).
      const changed = [...all].filter((h) => {
        const e = h & 0x7f80;
        const nan = e === 0x7f80 && (h & 0x7f) !== 0;
        return !(e === 0 || (nan && (h & 0x40) === 0)) && back[h] !== h;
      });
      t.same(changed, [], `${path}: normal, zero, inf and quiet NaN values round-trip`);
    }
  },
);

t.test('bad input is refused naming the argument', async (t) => {
  t.throws(() => f32ToBf16(new Float64Array(2) as unknown as Float32Array), /f32ToBf16: x must be a Float32Array/);
  t.throws(() => bf16ToF32(new Int16Array(2) as unknown as Uint16Array), /bf16ToF32: h must be a Uint16Array/);
  t.throws(() => f32ToBf16(new Float32Array(2), 'avx9' as 'scalar'), /path 'avx9' is not available/);
});
