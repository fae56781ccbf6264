// Argument checks of the token losses (policy-loss.ts, sft-loss.ts, kl-estimator.ts). The losses are
// public API (src/index.ts) fed from user code as well as the trainer, so a bad array or option
// throws before any arithmetic, with a message naming the function and the argument, e.g.
// "policyLoss: inputs.oldLogp must have length 40 (T = logp.length), got 39".

/** `v` as an instance of the typed array `type`, or a TypeError saying what it was instead. */
function checkTyped<A>(fn: string, name: string, v: unknown, type: abstract new (...args: never[]) => A): A {
  if (v instanceof type) return v;
  const got = ArrayBuffer.isView(v)
    ? 'a different typed array'
    : Array.isArray(v)
      ? 'a plain Array'
      : 'not a typed array';
  throw new TypeError(`${fn}: ${name} must be a${type.name.startsWith('I') ? 'n' : ''} ${type.name} (got ${got})`);
}

/** A Float32Array of `length` finite values (any length when undefined). */
export function checkF32(fn: string, name: string, x: unknown, length?: number, lengthName?: string): Float32Array {
  const v = checkTyped(fn, name, x, Float32Array);
  if (length !== undefined && v.length !== length)
    throw new RangeError(
      `${fn}: ${name} must have length ${length}${lengthName ? ` (${lengthName})` : ''}, got ${v.length}`,
    );
  for (let i = 0; i < v.length; i++)
    if (!Number.isFinite(v[i]))
      throw new RangeError(`${fn}: ${name} contains a non-finite value (${v[i]}) at index ${i}`);
  return v;
}

/** A Float32Array of T zeros and ones. */
export function checkMask(fn: string, name: string, v: unknown, T: number): Float32Array {
  const mask = checkF32(fn, name, v, T, 'T');
  for (let i = 0; i < T; i++)
    if (mask[i] !== 0 && mask[i] !== 1) throw new RangeError(`${fn}: ${name}[${i}] must be 0 or 1, got ${mask[i]}`);
  return mask;
}

/** Sequence offsets into T tokens: an Int32Array starting at 0, non-decreasing, ending at T. */
export function checkCuSeqlens(fn: string, name: string, cu: unknown, T: number): Int32Array {
  const v = checkTyped(fn, name, cu, Int32Array);
  if (v.length < 2) throw new RangeError(`${fn}: ${name} must hold at least 2 offsets (n_seqs + 1), got ${v.length}`);
  if (v[0] !== 0) throw new RangeError(`${fn}: ${name}[0] must be 0, got ${v[0]}`);
  for (let i = 1; i < v.length; i++)
    if (v[i] < v[i - 1])
      throw new RangeError(
        `${fn}: ${name} must be non-decreasing, but ${name}[${i}] = ${v[i]} < ${name}[${i - 1}] = ${v[i - 1]}`,
      );
  if (v[v.length - 1] !== T)
    throw new RangeError(`${fn}: ${name} must end at the token count ${T}, got ${v[v.length - 1]}`);
  return v;
}

/** A string option among `allowed`; `fallback` when absent, or an error saying it is required. */
export function checkChoice<T extends string>(
  fn: string,
  o: object,
  key: string,
  allowed: readonly T[],
  fallback?: T,
): T {
  const v = (o as Record<string, unknown>)[key];
  const list = allowed.map((a) => `'${a}'`).join(', ');
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new TypeError(`${fn}: option '${key}' is required (one of ${list})`);
  }
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw new TypeError(
    `${fn}: option '${key}' must be one of ${list}, ${typeof v === 'string' ? `got '${v}'` : 'got a non-string'}`,
  );
}

/** A finite number option; `fallback` when absent (required when no fallback is given). */
export function checkNumber(fn: string, o: object, key: string, fallback?: number): number {
  const v = (o as Record<string, unknown>)[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number') throw new TypeError(`${fn}: option '${key}' must be a number`);
  if (!Number.isFinite(v)) throw new RangeError(`${fn}: option '${key}' must be finite`);
  return v;
}
