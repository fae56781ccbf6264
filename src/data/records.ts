// Raw records of a training data file, one per row, before any column is interpreted: JSONL (one
// JSON object a line), Parquet (the Hugging Face datasets layout) or Arrow (save_to_disk). A row that cannot even be read
// as a record (bad JSON, not an object, text that is not UTF-8) comes back as a fault with its row
// number, so the loader can apply data.on_bad_row to it like to any other bad row.
import { readFileSync } from 'node:fs';
import {
  asyncBufferFromFile,
  parquetMetadataAsync,
  parquetReadObjects,
  type AsyncBuffer,
  type FileMetaData,
} from 'hyparquet';
import { readArrowRecords } from './arrow-records.js';
import { strictUtf8Text, utf8Lines } from '../util/utf8-lines.js';
import { DataError, type RowLocation } from './errors.js';

export type RawRecord = Record<string, unknown>;

export type RecordOrFault = { where: RowLocation; record: RawRecord } | { where: RowLocation; fault: string };

/** A Parquet string cell whose bytes are not UTF-8; kept as a value so the row, not the file, fails. */
export class InvalidUtf8 {
  constructor(readonly bytes: Uint8Array) {}
}

export function dataFormat(file: string): 'jsonl' | 'parquet' | 'arrow' {
  if (/\.parquet$/i.test(file)) return 'parquet';
  if (/\.jsonl?$/i.test(file)) return 'jsonl';
  if (/\.arrow$/i.test(file)) return 'arrow';
  throw new DataError(`${file}: unknown data format (expected .jsonl, .json, .parquet or .arrow)`, file);
}

/** Rows in file order. Parquet is read a row group at a time, so memory holds one group's image bytes, not the file's. */
export async function* readRecords(file: string): AsyncGenerator<RecordOrFault> {
  const format = dataFormat(file);
  if (format === 'parquet') yield* readParquetRecords(file);
  else if (format === 'arrow') yield* readArrowRecords(file);
  else yield* readJsonlRecords(file);
}

function readBytes(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new DataError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
}

/** One line that is not UTF-8 is one bad row (named by its line number), not a failed file (utf8Lines). */
export function readJsonlRecords(file: string): RecordOrFault[] {
  const bytes = readBytes(file);
  refuseJsonArray(file, bytes);
  const out: RecordOrFault[] = [];
  for (const { line, text } of utf8Lines(bytes)) {
    const where = { file, row: line };
    if (text === null) {
      out.push({ where, fault: 'not valid UTF-8' });
      continue;
    }
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      out.push({ where, fault: 'not valid JSON' });
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      out.push({ where, fault: 'expected a JSON object' });
    else out.push({ where, record: value as RawRecord });
  }
  return out;
}

/** A .json file holding one JSON array (a common export) is not JSON Lines: said once, not as every line's fault. */
function refuseJsonArray(file: string, bytes: Uint8Array): void {
  const first = bytes.findIndex((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  if (bytes[first] !== 0x5b) return; // '['
  let whole: unknown;
  try {
    whole = JSON.parse(strictUtf8Text(bytes) ?? '');
  } catch {
    return; // not one array: the lines are judged one by one
  }
  if (Array.isArray(whole))
    throw new DataError(
      `${file}: a JSON array, not JSON Lines (one JSON object per line); convert it, e.g. jq -c '.[]' ${file}`,
      file,
    );
}

async function openParquet(file: string): Promise<{ buffer: AsyncBuffer; metadata: FileMetaData }> {
  try {
    const buffer = await asyncBufferFromFile(file);
    return { buffer, metadata: await parquetMetadataAsync(buffer) };
  } catch (e) {
    throw new DataError(
      `${file}: not a readable Parquet file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      file,
    );
  }
}

async function readParquetRange(
  file: string,
  p: { buffer: AsyncBuffer; metadata: FileMetaData },
  rowStart: number,
  rowEnd: number,
  columns?: string[],
): Promise<RawRecord[]> {
  try {
    return (await parquetReadObjects({
      file: p.buffer,
      metadata: p.metadata,
      rowStart,
      rowEnd,
      columns,
      // Un-annotated byte arrays (image bytes) stay bytes; annotated strings decode strictly.
      utf8: false,
      parsers: { stringFromBytes: strictString },
    })) as RawRecord[];
  } catch (e) {
    throw new DataError(`${file}: rows ${rowStart + 1}-${rowEnd}: not readable (${(e as Error).message})`, file);
  }
}

function strictString(b: Uint8Array | undefined): string | InvalidUtf8 | undefined {
  if (!b) return b;
  return strictUtf8Text(b) ?? new InvalidUtf8(b);
}

/** Row groups one at a time: the writer sized them, and a smaller range would decode its column chunks again. */
export async function* readParquetRecords(file: string): AsyncGenerator<RecordOrFault> {
  const p = await openParquet(file);
  let start = 0;
  for (const group of p.metadata.row_groups) {
    const end = start + Number(group.num_rows);
    const rows = await readParquetRange(file, p, start, end);
    for (const [i, record] of rows.entries()) yield { where: { file, row: start + i + 1 }, record };
    start = end;
  }
}

/** One cell of one row (1-based), read again: how image bytes kept out of memory are fetched per batch. */
export async function readParquetCell(file: string, row: number, column: string): Promise<unknown> {
  const p = await openParquet(file);
  const [record] = await readParquetRange(file, p, row - 1, row, [column]);
  if (!record) throw new DataError(`${file}: row ${row} is past the end of the file`, file, row);
  return record[column];
}
