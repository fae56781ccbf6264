// Writer for the safetensors format, the counterpart of safetensors.ts. Tensors are produced one at
// a time by callbacks, so saving a model never holds more than one tensor's bytes beside the
// weights themselves. The file appears under its final name only when complete (temporary file,
// fsync, rename), so a crash mid-save never leaves a truncated checkpoint behind.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fsyncDir } from '../util/atomic-write.js';
import { numel, SafetensorsError, type SafetensorsDtype } from './safetensors.js';

const DTYPE_BYTES: Partial<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  U8: 1,
};

export interface TensorSource {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Little-endian bytes of the tensor, exactly numel(shape) * sizeof(dtype) long. */
  bytes: () => Uint8Array;
}

/** Byte size of a tensor in the file (for planning shards). */
export function tensorBytes(t: Pick<TensorSource, 'dtype' | 'shape' | 'name'>): number {
  const size = DTYPE_BYTES[t.dtype];
  if (size === undefined) throw new SafetensorsError(`tensor '${t.name}': cannot write dtype ${t.dtype}`);
  return numel(t.shape) * size;
}

export function writeSafetensors(
  path: string,
  tensors: readonly TensorSource[],
  metadata: Record<string, string> = {},
): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new SafetensorsError(`${path}: tensor '${t.name}' given twice`);
    seen.add(t.name);
    const n = tensorBytes(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  // The data area starts 8-byte aligned (the format allows trailing spaces in the header).
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));

  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const put = (b: Uint8Array) => {
      for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off);
    };
    put(prefix);
    put(headerBytes);
    for (const t of tensors) {
      const b = t.bytes();
      if (b.length !== tensorBytes(t))
        throw new SafetensorsError(
          `${path}: tensor '${t.name}' produced ${b.length} bytes, expected ${tensorBytes(t)}`,
        );
      put(b);
    }
    fsyncSync(fd);
    closeSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** Bytes of a typed array as a Uint8Array view (no copy). */
export function bytesOf(a: Float32Array | Uint16Array | Int32Array | Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** float32 -> bfloat16 with round-to-nearest-even (NaN stays NaN), as torch's .to(bfloat16) does. */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < u.length; i++) {
    const v = u[i];
    if ((v & 0x7fffffff) > 0x7f800000)
      out[i] = (v >>> 16) | 0x40; // quiet NaN
    else out[i] = (v + 0x7fff + ((v >>> 16) & 1)) >>> 16;
  }
  return out;
}
