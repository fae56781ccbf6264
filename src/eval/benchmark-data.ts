// A benchmark's local data file (JSONL or Parquet, as Hugging Face datasets exports them) turned
// into evaluation items by its task entry: the prompt text with the method's multiple-choice layout,
// the reference answer, the image cell. Nothing is downloaded. A bad row stops the task with the
// file, row and field named: skipping it would silently change the benchmark's denominator.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { columnsRead, type TaskSpec } from './tasks.js';
import { formatMultipleChoice, optionLetter } from './prompt.js';
import { readJsonlRecords } from '../data/records.js';

export class EvalDataError extends Error {}

export interface BenchmarkItem {
  task: string;
  /** Sample id: the task's id column, else the row number in the file (1-based). */
  id: string;
  /** `${task}/${id}`: the key of this sample in every results file. */
  key: string;
  scoring: TaskSpec['scoring'];
  /** What the model is asked (for multiple choice: the question, "Choices:" and lettered options). */
  prompt: string;
  /** Multiple-choice options without their letters (absent for open questions). */
  choices?: string[];
  /** 0-based index of the right option (multiple choice with an option as the answer). */
  answerIndex?: number;
  /** The reference answer: the right option's text, or the answer column(s)' text. */
  reference: string;
  /** The raw image cell (see images.ts) and the directory relative paths are resolved against. */
  image?: unknown;
  imageBaseDir: string;
  /** "file:row", for messages about this sample. */
  where: string;
}

type Row = Record<string, unknown>;

/** The task's data file in `dataDir`: its `file` entry, else <name or alias>.jsonl, else .parquet. */
export function benchmarkFile(task: TaskSpec, dataDir: string): string {
  if (task.file) {
    const f = join(dataDir, task.file);
    if (!existsSync(f)) throw new EvalDataError(`task ${task.name}: data file ${f} not found`);
    return f;
  }
  const names = [task.name, ...(task.aliases ?? [])];
  const candidates = names.flatMap((n) => ['.jsonl', '.parquet'].map((ext) => join(dataDir, n + ext)));
  const found = candidates.find((f) => existsSync(f));
  if (!found) throw new EvalDataError(`task ${task.name}: no data file (looked for ${candidates.join(' and ')})`);
  return found;
}

async function readRows(file: string): Promise<{ row: Row; where: string; index: number }[]> {
  if (file.endsWith('.parquet')) {
    let rows: Row[];
    try {
      // utf8: false keeps un-annotated byte arrays (image bytes) as bytes; STRING columns still decode.
      rows = (await parquetReadObjects({ file: await asyncBufferFromFile(file), utf8: false })) as Row[];
    } catch (e) {
      throw new EvalDataError(`${file}: not a readable Parquet file (${(e as Error).message})`);
    }
    return rows.map((row, i) => ({ row, where: `${file}: row ${i + 1}`, index: i + 1 }));
  }
  if (!/\.jsonl?$/.test(file)) throw new EvalDataError(`${file}: unknown data format (expected .jsonl or .parquet)`);
  // Stricter than the run-log reader (report/run-files.ts), which forgives a torn last line: a
  // benchmark file cut short is damaged data, and dropping its last row would change the score.
  // The training loader's JSON Lines reader: strict UTF-8 and JSON per line, a JSON array refused as a file.
  return readJsonlRecords(file).map((item, i) => {
    const where = `${file}:${item.where.row}`;
    if ('fault' in item) throw new EvalDataError(`${where}: ${item.fault}`);
    return { row: item.record as Row, where, index: i + 1 };
  });
}

/** A column's value; a dotted name reaches into nested objects when no column has the literal name. */
function column(row: Row, name: string, where: string): unknown {
  if (name in row) return row[name];
  let v: unknown = row;
  for (const part of name.split('.')) {
    if (typeof v !== 'object' || v === null || !(part in v))
      throw new EvalDataError(`${where}: missing field '${name}'`);
    v = (v as Row)[part];
  }
  return v;
}

function asText(v: unknown, name: string, where: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) return v.join('\n');
  throw new EvalDataError(`${where}: field '${name}' must be text, got ${v === null ? 'null' : typeof v}`);
}

function renderPrompt(template: string, row: Row, where: string): string {
  return template.replace(/\{([^{}]+)\}/g, (_, name: string) => asText(column(row, name, where), name, where));
}

/** Drops labels the data already carries ("A: text", "(B) text") when every option has its own. */
function withoutOwnLabels(options: string[]): string[] {
  const label = (i: number) => new RegExp(`^\\s*\\(?${optionLetter(i)}\\s*[:.)]\\s*`);
  return options.every((o, i) => label(i).test(o)) ? options.map((o, i) => o.replace(label(i), '')) : options;
}

function readChoices(task: TaskSpec, row: Row, where: string): string[] | undefined {
  const spec = task.choices;
  if (!spec) return undefined;
  let options: string[];
  if ('values' in spec) options = spec.values;
  else if ('columns' in spec) options = spec.columns.map((c) => asText(column(row, c, where), c, where));
  else {
    const v = column(row, spec.column, where);
    const list = Array.isArray(v) ? v : typeof v === 'object' && v !== null ? Object.values(v) : null;
    if (!list) throw new EvalDataError(`${where}: field '${spec.column}' must be a list or a dict of options`);
    options = list.map((o, i) => asText(o, `${spec.column}[${i}]`, where));
  }
  if (options.length < 2 || options.length > 26)
    throw new EvalDataError(`${where}: ${options.length} options (2 to 26 supported)`);
  return withoutOwnLabels(options.map((o) => o.trim()));
}

type OptionAnswer = { column: string; as: 'text' | 'index' | 'letter' };

function readAnswerIndex(answer: OptionAnswer, row: Row, choices: string[], where: string): number {
  const { column: name, as } = answer;
  const v = column(row, name, where);
  let index = -1;
  if (as === 'index') {
    const n = typeof v === 'bigint' ? Number(v) : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
    if (typeof n === 'number' && Number.isInteger(n)) index = n;
  } else if (as === 'letter') {
    const m = typeof v === 'string' ? /^\s*\(?([A-Za-z])\)?[:.)]?\s*$/.exec(v) : null;
    if (m) index = m[1].toUpperCase().charCodeAt(0) - 65;
  } else if (typeof v === 'string' || typeof v === 'number') {
    const text = String(v).trim().toLowerCase();
    index = choices.findIndex((c) => c.toLowerCase() === text);
  }
  if (index < 0 || index >= choices.length)
    throw new EvalDataError(
      `${where}: field '${name}' (${JSON.stringify(v)}) does not name one of the ${choices.length} options as ${as}`,
    );
  return index;
}

function matches(row: Row, where: Record<string, string | number | boolean> | undefined): boolean {
  if (!where) return true;
  return Object.entries(where).every(([k, want]) => k in row && String(row[k]) === String(want));
}

/**
 * A file exported with other column names is refused before any row is read; a row that lacks a column
 * the others have is named as that row's fault.
 */
function checkColumns(task: TaskSpec, file: string, rows: { row: Row; where: string }[]): void {
  for (const { row, where } of rows) {
    for (const c of columnsRead(task)) {
      const top = c in row ? c : c.split('.')[0];
      if (top in row) continue;
      const reads = `the task reads ${columnsRead(task).join(', ')}`;
      if (rows.some((r) => top in r.row))
        throw new EvalDataError(
          `task ${task.name}: ${where}: this row has no '${top}' (${reads}; its fields: ${Object.keys(row).join(', ')})`,
        );
      throw new EvalDataError(
        `task ${task.name}: ${file} has no column '${top}' (${where}; ${reads}; the file has ${Object.keys(row).join(', ')})`,
      );
    }
  }
}

function readReference(task: TaskSpec, row: Row, where: string): string {
  const names = 'columns' in task.answer ? task.answer.columns : [task.answer.column];
  const reference = names
    .map((c) => asText(column(row, c, where), c, where).trim())
    .join('\n')
    .trim();
  if (reference === '')
    throw new EvalDataError(`${where}: field '${names.join("' + '")}' (the reference answer) is empty`);
  return reference;
}

export async function readBenchmark(task: TaskSpec, dataDir: string): Promise<BenchmarkItem[]> {
  const file = benchmarkFile(task, dataDir);
  const items: BenchmarkItem[] = [];
  const ids = new Map<string, string>();
  const rows = await readRows(file);
  checkColumns(task, file, rows);
  const imageBaseDir = task.image_dir ? join(dirname(file), task.image_dir) : dirname(file);
  for (const { row, where, index } of rows) {
    if (!matches(row, task.where)) continue;
    const id = task.id ? asText(column(row, task.id, where), task.id, where).trim() : String(index);
    if (id === '') throw new EvalDataError(`${where}: field '${task.id}' (the sample id) is empty`);
    if (ids.has(id)) throw new EvalDataError(`${where}: sample id '${id}' already used at ${ids.get(id)}`);
    ids.set(id, where);
    const question = renderPrompt(task.prompt, row, where);
    const choices = readChoices(task, row, where);
    const base = { task: task.name, id, key: `${task.name}/${id}`, scoring: task.scoring, where, imageBaseDir };
    const image = task.image === undefined ? undefined : column(row, task.image, where);
    if (choices && 'column' in task.answer) {
      const answerIndex = readAnswerIndex(task.answer, row, choices, where);
      items.push({
        ...base,
        prompt: formatMultipleChoice(question, choices),
        choices,
        answerIndex,
        reference: choices[answerIndex],
        image,
      });
    } else if (choices) {
      const reference = readReference(task, row, where);
      items.push({ ...base, prompt: formatMultipleChoice(question, choices), choices, reference, image });
    } else {
      items.push({ ...base, prompt: question, reference: readReference(task, row, where), image });
    }
  }
  if (items.length === 0)
    throw new EvalDataError(`${file}: no rows for task ${task.name}${task.where ? ' after its `where` filter' : ''}`);
  return items;
}
