// Dotted `key=value` overrides from the command line, typed by the schema: the value is parsed as
// the key's schema says (number, boolean, list, mapping, or plain string), so `data.seed=7` is a
// number and `trainer.save_checkpoint_path=007` stays a string. An unknown key is refused with the
// allowed keys at that level; `key=null` removes an optional key.
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { TrainingConfigError } from './errors.js';
import { kindOf, objectKeys, schemaAt, unknownKeyMessage, unwrapSchema } from './schema-walk.js';

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function elementSchema(node: z.ZodType): z.ZodType | undefined {
  const def = (unwrapSchema(node) as unknown as { _zod: { def: { element?: z.ZodType; items?: z.ZodType[] } } })._zod
    .def;
  return def.element ?? def.items?.[0];
}

function parseNumber(text: string, fail: (why: string) => never): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(n)) fail(`expected a number, got '${text}'`);
  return n;
}

/** The override's text as the value the schema node expects. */
function typedValue(node: z.ZodType, text: string, fail: (why: string) => never): unknown {
  switch (kindOf(node)) {
    case 'number':
      return parseNumber(text, fail);
    case 'boolean':
      if (text === 'true') return true;
      if (text === 'false') return false;
      return fail(`expected true or false, got '${text}'`);
    case 'string':
    case 'enum':
      return text;
    case 'array': {
      // [a, b] is a YAML flow list; a bare a,b is split on commas.
      const items: unknown = text.trim().startsWith('[')
        ? parseYamlValue(text, fail)
        : text.split(',').map((s) => s.trim());
      if (!Array.isArray(items)) return fail(`expected a list such as [0.9, 0.999], got '${text}'`);
      const el = elementSchema(node);
      return el && kindOf(el) === 'number'
        ? items.map((x) => (typeof x === 'number' ? x : parseNumber(String(x), fail)))
        : items;
    }
    case 'object': {
      const v = parseYamlValue(text, fail);
      if (!isMapping(v)) return fail(`expected a mapping such as {"n": 4}, got '${text}'`);
      return v;
    }
    default:
      return parseYamlValue(text, fail);
  }
}

function parseYamlValue(text: string, fail: (why: string) => never): unknown {
  try {
    return parseYaml(text);
  } catch (e) {
    return fail(`cannot parse '${text}' (${(e as Error).message.split('\n')[0]})`);
  }
}

/** Applies one `a.b.c=value` to a raw (unvalidated) config object, in place. */
export function applyOverride(raw: Record<string, unknown>, assignment: string, schema: z.ZodType): void {
  const eq = assignment.indexOf('=');
  const fail = (why: string): never => {
    throw new TrainingConfigError(`override '${assignment}': ${why}`);
  };
  if (eq <= 0) fail('expected key.path=value');
  const path = assignment.slice(0, eq).trim().split('.');
  const text = assignment.slice(eq + 1);
  if (path.some((k) => k === '')) fail('empty key in the dotted path');
  const at = schemaAt(schema, path);
  if (!at.found) {
    const parentPath = path.slice(0, at.depth).join('.') || '(top level)';
    const allowed = objectKeys(at.parent);
    fail(
      allowed
        ? `${parentPath}: ${unknownKeyMessage(path[at.depth], allowed)}`
        : `${parentPath} takes a single value, not keys under it`,
    );
  }
  const node = (at as { node: z.ZodType }).node;
  let target: Record<string, unknown> = raw;
  for (const k of path.slice(0, -1)) {
    if (!isMapping(target[k])) target[k] = {};
    target = target[k] as Record<string, unknown>;
  }
  const key = path[path.length - 1];
  if (text === 'null') {
    // null removes an optional key; a required one would otherwise become the text 'null' (a file named null).
    if (!node.safeParse(undefined).success) fail(`${path.join('.')} is required: null cannot remove it`);
    delete target[key];
    return;
  }
  target[key] = typedValue(node, text, fail);
}

export function applyOverrides(raw: Record<string, unknown>, assignments: readonly string[], schema: z.ZodType): void {
  for (const a of assignments) applyOverride(raw, a, schema);
}
