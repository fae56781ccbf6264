// What data.train_files / data.val_files may name, turned into the data files to read, in order:
// - a JSONL, Parquet or Arrow file;
// - a directory of Parquet shards (every *.parquet below it, in name order);
// - a `datasets` save_to_disk directory (state.json lists its .arrow files; a DatasetDict's
//   dataset_dict.json its splits, chosen as DIR@split);
// - a Hugging Face hub dataset as `org/name@split`, resolved offline from the hub cache
//   (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub): the snapshot refs/main points
//   to, and in it the split's files (data/train-00000-of-00002.parquet, train.jsonl, ...).
// Nothing is downloaded: a dataset missing from the cache is an error saying where it was looked for.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, relative, sep } from 'node:path';
import { DataError } from './errors.js';

const DATA_FILE = /\.(jsonl?|parquet|arrow)$/i;
const HUB_ID = /^([\w.-]+)\/([\w.-]+)@([\w.-]+)$/;

/** The hub cache folder, as huggingface_hub finds it. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  return join(env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface'), 'hub');
}

/** True for `org/name@split` that is not a path under baseDir (config paths leave it as written). */
export function isHubDatasetId(spec: string, baseDir: string): boolean {
  const m = HUB_ID.exec(spec);
  return m !== null && !existsSync(join(baseDir, `${m[1]}/${m[2]}`)) && !existsSync(join(baseDir, spec));
}

function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .sort();
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DataError(`${file}: not readable JSON (${(e as Error).message})`, file);
  }
}

/** save_to_disk: a Dataset (state.json) or, with a split, one split of a DatasetDict. */
function savedToDisk(dir: string, split: string | undefined, spec: string): string[] | null {
  if (existsSync(join(dir, 'dataset_dict.json'))) {
    const splits = (readJson(join(dir, 'dataset_dict.json')) as { splits?: string[] }).splits ?? [];
    if (split === undefined || !splits.includes(split))
      throw new DataError(
        `${spec}: a saved DatasetDict; name a split as ${dir}@SPLIT (one of ${splits.join(', ')})`,
        dir,
      );
    return savedToDisk(join(dir, split), undefined, spec);
  }
  if (!existsSync(join(dir, 'state.json'))) return null;
  const state = readJson(join(dir, 'state.json')) as { _data_files?: { filename?: unknown }[] };
  const files = (state._data_files ?? []).map((f) => f.filename);
  if (files.length === 0 || !files.every((f): f is string => typeof f === 'string'))
    throw new DataError(`${join(dir, 'state.json')}: _data_files lists no .arrow files`, dir);
  return files.map((f) => join(dir, f));
}

/** The split's files in a snapshot: named after the split (train-00000-of-00001.parquet, train.jsonl) or in a folder of that name. */
function splitFiles(snapshot: string, split: string): string[] {
  return filesBelow(snapshot).filter((f) => {
    if (!DATA_FILE.test(f)) return false;
    const name = basename(f);
    return (
      name.startsWith(`${split}-`) ||
      name.startsWith(`${split}.`) ||
      relative(snapshot, f).split(sep).slice(0, -1).includes(split)
    );
  });
}

function fromHubCache(org: string, name: string, split: string, spec: string, env: NodeJS.ProcessEnv): string[] {
  const repo = join(hubCacheDir(env), `datasets--${org}--${name}`);
  const ref = join(repo, 'refs', 'main');
  if (!existsSync(ref))
    throw new DataError(
      `${spec}: not in the Hugging Face cache (no ${ref}); download it once (huggingface-cli download --repo-type dataset ${org}/${name}) or set HF_HOME`,
      spec,
    );
  const snapshot = join(repo, 'snapshots', readFileSync(ref, 'utf8').trim());
  if (!existsSync(snapshot))
    throw new DataError(`${spec}: ${ref} names a snapshot that is not in the cache (${snapshot})`, spec);
  const files = splitFiles(snapshot, split);
  if (files.length === 0)
    throw new DataError(`${spec}: the cached snapshot ${snapshot} has no data files for split '${split}'`, spec);
  return files;
}

/** The data files a train_files / val_files value names (see the top of this file). */
export function resolveDataFiles(spec: string, env: NodeJS.ProcessEnv = process.env): string[] {
  if (existsSync(spec)) {
    if (!statSync(spec).isDirectory()) return [spec];
    const saved = savedToDisk(spec, undefined, spec);
    if (saved) return saved;
    const shards = filesBelow(spec).filter((f) => /\.parquet$/i.test(f));
    if (shards.length === 0)
      throw new DataError(`${spec}: a directory with no .parquet files and no save_to_disk state.json`, spec);
    return shards;
  }
  const at = spec.lastIndexOf('@');
  if (at > 0 && existsSync(spec.slice(0, at))) {
    const saved = savedToDisk(spec.slice(0, at), spec.slice(at + 1), spec);
    if (saved) return saved;
  }
  const hub = HUB_ID.exec(spec);
  if (hub) return fromHubCache(hub[1], hub[2], hub[3], spec, env);
  throw new DataError(`${spec}: no such file or directory (nor a hub dataset as org/name@split)`, spec);
}
