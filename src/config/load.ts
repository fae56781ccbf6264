// Loading a training config: YAML file, dotted overrides on top, schema validation with errors
// naming the file, key path and allowed values; relative paths resolved against the config file's
// folder; and the resolved config back to YAML to save with a run.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { TrainingConfigError, describeIssues } from './errors.js';
import { applyOverrides } from './overrides.js';
import { trainingConfigSchema, type TrainingConfig } from './schema.js';
import { isHubDatasetId } from '../data/sources.js';

/** Validates a raw config object; `where` names its source in errors. */
export function parseTrainingConfig(raw: unknown, where: string): TrainingConfig {
  const r = trainingConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const lines = describeIssues(r.error.issues, raw, trainingConfigSchema);
  throw new TrainingConfigError(`${where}: invalid training config:\n  ${lines.join('\n  ')}`);
}

/** Reads YAML, applies `key=value` overrides, validates, and resolves paths against the file's folder. */
export function loadTrainingConfig(file: string, overrides: readonly string[] = []): TrainingConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TrainingConfigError(
      `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (e) {
    throw new TrainingConfigError(`${file}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new TrainingConfigError(
      `${file}: expected a mapping of sections (data, algorithm, worker, trainer) at the top level`,
    );
  applyOverrides(raw as Record<string, unknown>, overrides, trainingConfigSchema);
  return resolveConfigPaths(parseTrainingConfig(raw, file), dirname(resolve(file)));
}

/** The config with every file path absolute (relative ones taken from baseDir), so a saved copy stands alone. */
export function resolveConfigPaths(c: TrainingConfig, baseDir: string): TrainingConfig {
  // Only keys that are set are touched, so an absent optional key stays absent (not `undefined`).
  const absolute = <T extends object>(section: T, keys: readonly (keyof T)[]): T => {
    const out = { ...section };
    for (const k of keys) {
      const p = out[k];
      if (typeof p === 'string' && !isAbsolute(p)) out[k] = resolve(baseDir, p) as T[keyof T];
    }
    return out;
  };
  return {
    ...c,
    // A hub dataset (org/name@split) is a name, not a path: it stays as written.
    data: {
      ...absolute(c.data, ['train_files', 'val_files', 'image_dir', 'format_prompt_path']),
      ...hubIds(c.data, baseDir),
    },
    worker: {
      ...c.worker,
      actor: { ...c.worker.actor, model: absolute(c.worker.actor.model, ['model_path', 'tokenizer_path']) },
    },
    sft: { ...absolute(c.sft, ['train_files']), ...hubIds(c.sft, baseDir) },
    trainer: absolute(c.trainer, ['save_checkpoint_path', 'load_checkpoint_path']),
  };
}

/** The resolved config as YAML; loading it back gives the same config. */
export function trainingConfigToYaml(c: TrainingConfig): string {
  return toYaml(c);
}

/** The keys of `files` that name hub datasets, as written. */
function hubIds<T extends { train_files?: string; val_files?: string }>(files: T, baseDir: string): Partial<T> {
  const out: Partial<T> = {};
  for (const k of ['train_files', 'val_files'] as const) {
    const f = files[k];
    if (f !== undefined && isHubDatasetId(f, baseDir)) out[k] = f as T[typeof k];
  }
  return out;
}
