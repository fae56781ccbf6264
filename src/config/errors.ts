// Configuration errors that name the key path and say what is allowed there.
import type { z } from 'zod';
import { enumValues, objectKeys, schemaAt, unknownKeyMessage } from './schema-walk.js';

export class TrainingConfigError extends Error {
  override name = 'TrainingConfigError';
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v = raw;
  for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

function show(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : (JSON.stringify(v) ?? String(v));
}

/** One line per problem: "key.path: what is wrong; allowed: ...". */
export function describeIssues(issues: readonly z.core.$ZodIssue[], raw: unknown, schema: z.ZodType): string[] {
  return issues.flatMap((issue) => {
    const path = issue.path.map(String);
    const where = path.join('.') || '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const at = schemaAt(schema, path);
      const allowed = at.found ? (objectKeys(at.node) ?? []) : [];
      return issue.keys.map((k) => `${path.concat(k).join('.')}: ${unknownKeyMessage(k, allowed)}`);
    }
    const got = valueAt(raw, issue.path);
    if (issue.code === 'invalid_value') {
      const at = schemaAt(schema, path);
      const allowed = (at.found ? enumValues(at.node) : null) ?? issue.values.map(String);
      return [`${where}: ${show(got)} is not allowed; allowed: ${allowed.join(', ')}`];
    }
    if (issue.code === 'invalid_type') {
      return [
        got === undefined
          ? `${where}: required (${issue.expected})`
          : `${where}: expected ${issue.expected}, got ${show(got)}`,
      ];
    }
    // A list (a tuple such as betas) too short or too long is counted in items, not compared as a number.
    const items = (n: unknown) => `${String(n)} item${Number(n) === 1 ? '' : 's'}`;
    if ((issue.code === 'too_small' || issue.code === 'too_big') && issue.origin === 'array') {
      const [word, n] = issue.code === 'too_small' ? ['at least', issue.minimum] : ['at most', issue.maximum];
      return [`${where}: ${show(got)} must have ${issue.exact ? 'exactly' : word} ${items(n)}`];
    }
    if (issue.code === 'too_small')
      return [`${where}: ${show(got)} is too small; must be ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`];
    if (issue.code === 'too_big')
      return [`${where}: ${show(got)} is too big; must be ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`];
    return [`${where}: ${issue.message}`];
  });
}
