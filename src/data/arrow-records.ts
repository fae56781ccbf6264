// Rows of an Arrow file as `datasets` save_to_disk writes them (the IPC stream format; the file
// format is read too), through apache-arrow. Cells become plain values: lists as arrays, structs
// (an Image feature's {bytes, path}) as objects, binary as Uint8Array, so the loader sees the same
// shapes as from Parquet.
import { readFileSync } from 'node:fs';
import { tableFromIPC, Vector } from 'apache-arrow';
import { DataError } from './errors.js';
import type { RecordOrFault } from './records.js';

function plain(v: unknown): unknown {
  if (v === null || v === undefined || typeof v !== 'object') return typeof v === 'bigint' ? Number(v) : v;
  if (v instanceof Uint8Array) return v;
  if (v instanceof Vector) return [...v].map(plain);
  if (ArrayBuffer.isView(v)) return [...(v as unknown as Iterable<unknown>)].map(plain);
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return plain((v as { toJSON(): unknown }).toJSON());
  if (Array.isArray(v)) return v.map(plain);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
}

export function readArrowRecords(file: string): RecordOrFault[] {
  let table: ReturnType<typeof tableFromIPC>;
  try {
    table = tableFromIPC(readFileSync(file));
  } catch (e) {
    throw new DataError(
      `${file}: not a readable Arrow file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      file,
    );
  }
  const names = table.schema.fields.map((f) => f.name);
  const out: RecordOrFault[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const row = table.get(i);
    const record: Record<string, unknown> = {};
    for (const n of names) record[n] = plain(row?.[n]);
    out.push({ where: { file, row: i + 1 }, record });
  }
  return out;
}
