// Looking into the zod schema by key path: the node a dotted key names (to type a command-line
// override) and the keys an object allows (to list them in an error). Wrappers that do not change
// what a key holds (optional, default, prefault, nullable, pipes) are looked through.
import type { z } from 'zod';

type Def = {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  items?: z.ZodType[];
  entries?: Record<string, unknown>;
};

function defOf(s: z.ZodType): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

/** The schema with optional/default/prefault/nullable/pipe wrappers removed. */
export function unwrapSchema(s: z.ZodType): z.ZodType {
  let node = s;
  for (;;) {
    const d = defOf(node);
    if (d.innerType && ['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch'].includes(d.type))
      node = d.innerType;
    else if (d.type === 'pipe' && d.in) node = d.in;
    else return node;
  }
}

/** The kind of value a schema node holds, as an override parser needs it. */
export type ValueKind = 'number' | 'boolean' | 'string' | 'enum' | 'array' | 'object' | 'other';

export function kindOf(s: z.ZodType): ValueKind {
  const t = defOf(unwrapSchema(s)).type;
  if (t === 'number' || t === 'boolean' || t === 'string' || t === 'enum' || t === 'object') return t;
  if (t === 'array' || t === 'tuple') return 'array';
  return 'other';
}

/** Allowed keys of an object schema node, or null when it is not an object. */
export function objectKeys(s: z.ZodType): string[] | null {
  const d = defOf(unwrapSchema(s));
  return d.type === 'object' && d.shape ? Object.keys(d.shape) : null;
}

/** The values an enum node allows, or null. */
export function enumValues(s: z.ZodType): string[] | null {
  const d = defOf(unwrapSchema(s));
  return d.type === 'enum' && d.entries ? Object.values(d.entries).map(String) : null;
}

/** The schema node at a key path, or where the walk stopped (the longest existing prefix and its node). */
export function schemaAt(
  root: z.ZodType,
  path: readonly string[],
): { node: z.ZodType; found: true } | { parent: z.ZodType; depth: number; found: false } {
  let node = root;
  for (let i = 0; i < path.length; i++) {
    const d = defOf(unwrapSchema(node));
    const next = d.type === 'object' ? d.shape?.[path[i]] : undefined;
    if (!next) return { parent: node, depth: i, found: false };
    node = next;
  }
  return { node, found: true };
}

/** Edit distance, to suggest the key a typo meant. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

/** "unknown key 'x' (did you mean 'y'?; allowed: ...)". */
export function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const near = allowed
    .map((k) => ({ k, d: distance(key, k) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(key.length / 3)))
    .sort((a, b) => a.d - b.d)[0];
  return `unknown key '${key}'${near ? ` (did you mean '${near.k}'?)` : ''}; allowed: ${allowed.join(', ')}`;
}
