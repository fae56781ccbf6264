// The safetensors reader refuses damaged files with a SafetensorsError naming the file and the
// fault, and never crashes, hangs or allocates beyond the file: targeted corruptions, then a
// seeded fuzz of a few hundred byte flips, truncations and length edits.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile, SafetensorsError } from '../../src/model/safetensors.js';
import { bytesOf, writeSafetensors } from '../../src/model/safetensors-writer.js';
import { prng } from '../../src/util/prng.js';

const dir = mkdtempSync(join(tmpdir(), 'medix-fuzz-'));
const good = join(dir, 'good.safetensors');
writeSafetensors(good, [
  { name: 'a', dtype: 'F32', shape: [2, 3], bytes: () => bytesOf(new Float32Array([1, 2, 3, 4, 5, 6])) },
  { name: 'b', dtype: 'BF16', shape: [4], bytes: () => bytesOf(new Uint16Array([0x3f80, 0x4000, 0x4040, 0x4080])) },
]);
const original = readFileSync(good);
const headerLen = Number(original.readBigUInt64LE(0));
const header = JSON.parse(original.subarray(8, 8 + headerLen).toString('utf8'));

function withHeader(h: unknown, data = original.subarray(8 + headerLen)): Buffer {
  const json = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

/** Opens and reads every tensor; returns the error or null. */
function tryRead(bytes: Buffer): unknown {
  const f = join(dir, 'case.safetensors');
  writeFileSync(f, bytes);
  try {
    const st = SafetensorsFile.open(f);
    try {
      for (const name of st.tensors.keys()) st.readFloat32(name);
    } finally {
      st.close();
    }
    return null;
  } catch (e) {
    return e;
  }
}

t.test('targeted corruptions are named', async (t) => {
  t.equal(tryRead(original), null, 'the intact file reads');
  const cases: [string, Buffer, RegExp][] = [
    ['empty file', Buffer.alloc(0), /shorter than the 8-byte header length/],
    [
      'header length past the end',
      Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), original.subarray(8)]),
      /header length .* exceeds the file/,
    ],
    ['header length 2^64 - 1', Buffer.concat([Buffer.alloc(8, 0xff), original.subarray(8)]), /exceeds the file/],
    ['header not JSON', withHeader('x').fill(0x7b, 8, 9), /header is not JSON/],
    ['header an array', withHeader([1, 2]), /not a JSON object/],
    ['unknown dtype', withHeader({ ...header, a: { ...header.a, dtype: 'F8' } }), /tensor 'a': unknown dtype "F8"/],
    [
      'negative shape',
      withHeader({ ...header, a: { ...header.a, shape: [-2, -3] } }),
      /tensor 'a': shape must be a list of non-negative integers/,
    ],
    [
      'byte length mismatch',
      withHeader({ ...header, a: { ...header.a, shape: [2, 2] } }),
      /tensor 'a': holds 24 bytes but .* needs 16/,
    ],
    [
      'offsets past the data',
      withHeader({ ...header, b: { ...header.b, data_offsets: [1000, 1008] } }),
      /tensor 'b': data \[1000, 1008\) lies outside the file/,
    ],
    [
      'reversed offsets',
      withHeader({ ...header, b: { ...header.b, data_offsets: [32, 24] } }),
      /data_offsets must be \[begin, end\]/,
    ],
    [
      'overlapping tensors',
      withHeader({ ...header, b: { ...header.b, data_offsets: [16, 24] } }),
      /tensor 'b' overlaps tensor 'a'/,
    ],
    ['truncated data', original.subarray(0, original.length - 3), /lies outside the file/],
  ];
  for (const [what, bytes, expected] of cases) {
    const err = tryRead(bytes);
    t.ok(err instanceof SafetensorsError, `${what}: a SafetensorsError`);
    t.match((err as Error).message, expected, what);
    t.match((err as Error).message, /case\.safetensors/, `${what}: names the file`);
  }
});

t.test('seeded fuzz: always a SafetensorsError or a clean read, never a crash', async (t) => {
  const rand = prng(2024);
  const counts = { error: 0, ok: 0 };
  for (let i = 0; i < 400; i++) {
    const b = Buffer.from(original);
    const kind = i % 4;
    if (kind === 0)
      for (let k = 0; k < 1 + Math.floor(rand() * 4); k++)
        b[8 + Math.floor(rand() * headerLen)] = Math.floor(rand() * 256);
    else if (kind === 1) b.writeBigUInt64LE(BigInt(Math.floor(rand() * 2 ** 40)), 0);
    else if (kind === 2) b[Math.floor(rand() * 8)] = Math.floor(rand() * 256);
    const bytes = kind === 3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
    const err = tryRead(bytes);
    if (err === null) counts.ok++;
    else if (err instanceof SafetensorsError) counts.error++;
    else t.fail(`variant ${i} threw ${(err as Error).name}: ${(err as Error).message}`);
  }
  t.equal(
    counts.error + counts.ok,
    400,
    `${counts.error} refused, ${counts.ok} still valid (flips inside names or padding)`,
  );
  t.ok(counts.error > 300, 'most corruptions are caught');
});
