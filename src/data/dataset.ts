// The RL data set: rows of JSONL, Parquet or Arrow files (sources.ts says which) read under configurable column names (question,
// reference answer, images), checked row by row, with the data.on_bad_row policy applied to every
// fault (skip and count, or stop naming file and row) and prompts longer than max_prompt_length
// filtered and counted. Images are checked (readable, inside the dataset's directory, a usable
// size, from their headers) here, so most bad images are reported when the data loads rather than in
// the middle of a step; their pixels are decoded later, per batch (decodeImage), to keep memory flat,
// and one that fails then (a file cut short) is a bad row of the trainer's (Trainer.badRows).
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DataError, formatLocation, type RowLocation } from './errors.js';
import {
  ImageFault,
  imageSize,
  imageSources,
  smartResize,
  type ImageSize,
  type ImageSource,
  type ResizeBounds,
} from './images.js';
import { PromptError, type PromptFormatter } from './prompt.js';
import { dataFormat, InvalidUtf8, readRecords, type RawRecord } from './records.js';
import { parseGroundTruth } from '../reward/normalize.js';

export interface RlSample {
  /** "file:line" (JSONL) or "file: row N" (Parquet), for messages and sample logs. */
  id: string;
  where: RowLocation;
  question: string;
  /** The reference answer, e.g. "<X_RAY> Right lower lobe pneumonia". */
  answer: string;
  images: ImageSource[];
  /** Stored size of each image, in order. */
  imageSizes: ImageSize[];
  /** Prompt length in tokens (text and visual), when a formatter was given. */
  promptLength?: number;
}

export interface DataColumns {
  promptKey: string;
  answerKey: string;
  imageKey: string;
}

export interface LoadDatasetOptions extends DataColumns {
  /** Image columns tried, in order, when a row has no imageKey (MediX-R1's data names it 'image'). */
  imageKeyAliases?: readonly string[];
  onBadRow: 'skip' | 'stop';
  /** Where relative image paths resolve and what they may not leave; default: each data file's directory. */
  imageDir?: string;
  resize: ResizeBounds;
  /** Measures prompts; with maxPromptLength, longer ones are dropped and counted. */
  formatter?: PromptFormatter;
  maxPromptLength?: number;
  /** Told about each skipped row (file and row, and why). */
  warn?: (message: string) => void;
}

export interface DatasetStats {
  /** Rows read, good or bad. */
  rows: number;
  kept: number;
  badRows: number;
  overlongPrompts: number;
}

export interface RlDataset {
  samples: RlSample[];
  stats: DatasetStats;
}

/** A row's fault: applied the on_bad_row policy to, never thrown past the loader. */
class RowFault extends Error {}

function text(record: RawRecord, key: string): string {
  if (!(key in record) || record[key] === null || record[key] === undefined)
    throw new RowFault(`missing field '${key}'`);
  const v = record[key];
  if (v instanceof InvalidUtf8) throw new RowFault(`field '${key}' is not valid UTF-8`);
  // Numeric answers (counts, doses) are common in QA data; their text form is the answer.
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string')
    throw new RowFault(`field '${key}' must be text, got ${Array.isArray(v) ? 'a list' : typeof v}`);
  if (v.trim() === '') throw new RowFault(`field '${key}' is empty`);
  return v;
}

async function images(
  record: RawRecord,
  key: string,
  baseDir: string,
  resize: ResizeBounds,
): Promise<{ sources: ImageSource[]; sizes: ImageSize[] }> {
  try {
    const sources = imageSources(record[key], baseDir);
    const sizes: ImageSize[] = [];
    for (const [i, src] of sources.entries()) {
      const size = await imageSize(src).catch((e: unknown) => {
        throw e instanceof ImageFault ? new ImageFault(`image ${i + 1}: ${e.message}`) : e;
      });
      smartResize(size, resize); // refuses sizes the vision model cannot take (aspect ratio)
      sizes.push(size);
    }
    return { sources, sizes };
  } catch (e) {
    if (e instanceof ImageFault) throw new RowFault(`field '${key}': ${e.message}`);
    throw e;
  }
}

/** Reads one or more data files into samples, applying the bad-row policy and the length filter. */
export async function loadRlDataset(files: string | readonly string[], o: LoadDatasetOptions): Promise<RlDataset> {
  const list = typeof files === 'string' ? [files] : files;
  if (list.length === 0) throw new DataError('no data files given');
  // A mistyped data.image_dir would otherwise show only as every image row's 'cannot read image'.
  if (o.imageDir !== undefined && !(existsSync(o.imageDir) && statSync(o.imageDir).isDirectory()))
    throw new DataError(`data.image_dir ${o.imageDir}: not a directory`, o.imageDir);
  const samples: RlSample[] = [];
  const stats: DatasetStats = { rows: 0, kept: 0, badRows: 0, overlongPrompts: 0 };
  for (const file of list) {
    const baseDir = resolve(o.imageDir ?? dirname(file));
    for await (const item of readRecords(file)) {
      stats.rows++;
      const where = item.where;
      try {
        if ('fault' in item) throw new RowFault(item.fault);
        const question = text(item.record, o.promptKey);
        const answer = text(item.record, o.answerKey);
        const imageKey =
          o.imageKey in item.record ? o.imageKey : (o.imageKeyAliases?.find((k) => k in item.record) ?? o.imageKey);
        const img = await images(item.record, imageKey, baseDir, o.resize);
        // Parquet image bytes are dropped once checked and read again per batch (see ParquetImageRef).
        const sources =
          dataFormat(file) === 'parquet'
            ? img.sources.map((s, index) =>
                'bytes' in s ? { parquet: { file, row: where.row, column: imageKey, index, baseDir } } : s,
              )
            : img.sources;
        const sample: RlSample = {
          id: formatLocation(where),
          where,
          question,
          answer,
          images: sources,
          imageSizes: img.sizes,
        };
        if (o.formatter) {
          try {
            sample.promptLength = o.formatter.encode(question, img.sizes).length;
          } catch (e) {
            if (e instanceof PromptError) throw new RowFault(e.message);
            throw e;
          }
          if (o.maxPromptLength !== undefined && sample.promptLength > o.maxPromptLength) {
            stats.overlongPrompts++;
            continue;
          }
        }
        samples.push(sample);
      } catch (e) {
        if (!(e instanceof RowFault)) throw e;
        if (o.onBadRow === 'stop') throw DataError.at(where, `${e.message} (data.on_bad_row is 'stop')`);
        stats.badRows++;
        o.warn?.(`medix data: skipping ${formatLocation(where)}: ${e.message}`);
      }
    }
  }
  stats.kept = samples.length;
  // The reward reads the modality from the answer's "<TAG> " prefix and scores accuracy 0 without one
  // (as the reference does): a data set without tags would train on rewards of 0 with no other sign.
  const untagged = samples.filter((x) => parseGroundTruth(x.answer).tag === '');
  if (untagged.length > 0)
    o.warn?.(
      `medix data: ${untagged.length} of ${samples.length} rows have an answer without a <MODALITY> prefix (first: ${untagged[0].id}, field '${o.answerKey}'); the reward scores their accuracy 0, as the reference does ("<X_RAY> answer" is expected)`,
    );
  if (samples.length === 0) {
    throw new DataError(
      `${list.join(', ')}: no usable rows (${stats.rows} read, ${stats.badRows} bad, ${stats.overlongPrompts} longer than max_prompt_length)`,
      list[0],
    );
  }
  return { samples, stats };
}
