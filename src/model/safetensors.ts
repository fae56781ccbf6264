// Reader for the safetensors format (8-byte little-endian header length, a JSON header, raw
// little-endian tensor data). Hand-written because no maintained npm package reads it without
// loading whole files into memory; this one reads one tensor at a time through a file descriptor.
// Every inconsistency is reported with the file name and the tensor or field at fault.
import fs from 'node:fs';
import os from 'node:os';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** A header larger than this is refused rather than allocated (real headers are far smaller). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const LITTLE_ENDIAN = os.endianness() === 'LE';

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export class SafetensorsError extends Error {}

export class SafetensorsFile {
  readonly tensors: Map<string, TensorEntry>;
  readonly metadata: Record<string, string>;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    tensors: Map<string, TensorEntry>,
    metadata: Record<string, string>,
  ) {
    this.tensors = tensors;
    this.metadata = metadata;
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      throw new SafetensorsError(`${path}: cannot open (${(err as Error).message})`);
    }
    try {
      const { tensors, metadata } = parseHeader(path, fd);
      return new SafetensorsFile(path, fd, tensors, metadata);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  entry(name: string): TensorEntry {
    const e = this.tensors.get(name);
    if (!e) throw new SafetensorsError(`${this.path}: no tensor named '${name}'`);
    return e;
  }

  /** Raw bytes of a tensor, in a buffer of its own (offset 0, so typed-array views are aligned). */
  readBytes(name: string): Buffer {
    const e = this.entry(name);
    const buf = Buffer.allocUnsafeSlow(e.end - e.begin);
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(this.fd, buf, done, buf.length - done, e.begin + done);
      if (n === 0) throw new SafetensorsError(`${this.path}: tensor '${name}' is truncated (file ended early)`);
      done += n;
    }
    return buf;
  }

  /**
   * A floating-point tensor converted to float32 (F64, F32, F16 and BF16). F32 and BF16 go through
   * typed-array views of the bytes read (file order is little-endian, as the host must be), which
   * keeps loading a multi-GB checkpoint to one pass over memory per tensor.
   */
  readFloat32(name: string): Float32Array {
    const e = this.entry(name);
    if (!LITTLE_ENDIAN) throw new SafetensorsError(`${this.path}: reading needs a little-endian host`);
    const n = numel(e.shape);
    switch (e.dtype) {
      case 'F32': {
        const bytes = this.readBytes(name);
        return new Float32Array(bytes.buffer, bytes.byteOffset, n);
      }
      case 'F64':
        return Float32Array.from(new Float64Array(this.readBytes(name).buffer, 0, n));
      case 'BF16': {
        // bfloat16 is the top half of a float32.
        const half = new Uint16Array(this.readBytes(name).buffer, 0, n);
        const out = new Float32Array(n);
        const u32 = new Uint32Array(out.buffer);
        for (let i = 0; i < n; i++) u32[i] = half[i] << 16;
        return out;
      }
      case 'F16': {
        const half = new Uint16Array(this.readBytes(name).buffer, 0, n);
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = halfToFloat(half[i]);
        return out;
      }
      default:
        throw new SafetensorsError(`${this.path}: tensor '${name}' has dtype ${e.dtype}, expected a float type`);
    }
  }

  /** A float tensor in float64 (exact for F64; widened otherwise). */
  readFloat64(name: string): Float64Array {
    const e = this.entry(name);
    if (e.dtype !== 'F64') return Float64Array.from(this.readFloat32(name));
    if (!LITTLE_ENDIAN) throw new SafetensorsError(`${this.path}: reading needs a little-endian host`);
    return new Float64Array(this.readBytes(name).buffer, 0, numel(e.shape));
  }

  /** An integer tensor (I32 or I64 within int32 range) as Int32Array. */
  readInt32(name: string): Int32Array {
    const e = this.entry(name);
    const bytes = this.readBytes(name);
    const n = numel(e.shape);
    const out = new Int32Array(n);
    if (e.dtype === 'I32') for (let i = 0; i < n; i++) out[i] = bytes.readInt32LE(4 * i);
    else if (e.dtype === 'I64') {
      for (let i = 0; i < n; i++) {
        const v = bytes.readBigInt64LE(8 * i);
        if (v > 2147483647n || v < -2147483648n)
          throw new SafetensorsError(`${this.path}: tensor '${name}'[${i}] = ${v} does not fit in int32`);
        out[i] = Number(v);
      }
    } else throw new SafetensorsError(`${this.path}: tensor '${name}' has dtype ${e.dtype}, expected I32 or I64`);
    return out;
  }
}

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function parseHeader(
  path: string,
  fd: number,
): { tensors: Map<string, TensorEntry>; metadata: Record<string, string> } {
  const size = fs.fstatSync(fd).size;
  const bad = (msg: string): never => {
    throw new SafetensorsError(`${path}: not a valid safetensors file: ${msg}`);
  };
  if (size < 8) bad(`file is ${size} bytes, shorter than the 8-byte header length`);
  const lenBuf = Buffer.alloc(8);
  fs.readSync(fd, lenBuf, 0, 8, 0);
  const headerLen = lenBuf.readBigUInt64LE(0);
  if (headerLen > BigInt(Math.min(size - 8, MAX_HEADER_BYTES)))
    bad(`header length ${headerLen} exceeds the file (${size} bytes) or the ${MAX_HEADER_BYTES}-byte limit`);
  const hl = Number(headerLen);
  const headerBuf = Buffer.alloc(hl);
  fs.readSync(fd, headerBuf, 0, hl, 8);
  let header: unknown;
  try {
    header = JSON.parse(headerBuf.toString('utf8'));
  } catch (err) {
    bad(`header is not JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header is not a JSON object');
  const dataStart = 8 + hl;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (raw ?? {}) as Record<string, string>;
      continue;
    }
    const where = `tensor '${name}'`;
    if (typeof raw !== 'object' || raw === null) bad(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) bad(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      bad(`${where}: shape must be a list of non-negative integers`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    )
      bad(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end`);
    const [b, e] = offsets as [number, number];
    const expected = numel(shape as number[]) * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (e - b !== expected)
      bad(`${where}: holds ${e - b} bytes but dtype ${dtype} x shape [${shape}] needs ${expected}`);
    if (dataStart + e > size)
      bad(`${where}: data [${b}, ${e}) lies outside the file (data section is ${size - dataStart} bytes)`);
    tensors.set(name, {
      name,
      dtype: dtype as SafetensorsDtype,
      shape: shape as number[],
      begin: dataStart + b,
      end: dataStart + e,
    });
  }
  // Two tensors sharing bytes would alias each other's data: a corrupt or hostile file.
  const byStart = [...tensors.values()].filter((t) => t.end > t.begin).sort((x, y) => x.begin - y.begin);
  for (let i = 1; i < byStart.length; i++)
    if (byStart[i].begin < byStart[i - 1].end)
      bad(`tensor '${byStart[i].name}' overlaps tensor '${byStart[i - 1].name}'`);
  return { tensors, metadata };
}
