// Reads one JSON file of a model directory; every failure names the file.
import { readFile } from 'node:fs/promises';

import { TokenizerError } from './error.js';

export type JsonObject = Record<string, unknown>;

/** The file's top-level JSON object; `null` when the file does not exist and `optional` is set. */
export async function readJsonObject(file: string, optional: true): Promise<JsonObject | null>;
export async function readJsonObject(file: string, optional?: false): Promise<JsonObject>;
export async function readJsonObject(file: string, optional = false): Promise<JsonObject | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TokenizerError(`${file}: cannot read (${(err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TokenizerError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new TokenizerError(`${file}: expected a JSON object at the top level`);
  return json as JsonObject;
}

/** A text file, or `null` when it does not exist. */
export async function readOptionalText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TokenizerError(`${file}: cannot read (${(err as Error).message})`);
  }
}
