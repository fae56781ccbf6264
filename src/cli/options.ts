// Parsers of the subcommands' flag values, shared so that every command rejects a bad value the
// same way: commander prints "option '--flag <x>' argument 'v' is invalid." and the reason below.
import { InvalidArgumentError, Option } from 'commander';
import { DEVICES } from '../config/schema.js';
import { COMPUTE_DTYPES } from '../engine/compute-dtype.js';

/** A whole number >= 0 (a port, a seed), exactly representable. */
export function nonNegativeInt(v: string): number {
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)))
    throw new InvalidArgumentError(`expected a non-negative integer, got '${v}'`);
  return Number(v);
}

/** A whole number >= 1 (a count, a limit). */
export function positiveInt(v: string): number {
  if (nonNegativeInt(v) === 0) throw new InvalidArgumentError('expected a positive integer, got 0');
  return Number(v);
}

/** A finite number >= 0 (a temperature). */
export function nonNegativeNumber(v: string): number {
  const x = v.trim() === '' ? NaN : Number(v);
  if (!Number.isFinite(x) || x < 0) throw new InvalidArgumentError(`expected a number >= 0, got '${v}'`);
  return x;
}

/** A finite number > 0 (a size in GB). */
export function positiveNumber(v: string): number {
  const x = v.trim() === '' ? NaN : Number(v);
  if (!Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`expected a number > 0, got '${v}'`);
  return x;
}

/** A probability mass in (0, 1] (top-p). */
export function probability(v: string): number {
  const x = v.trim() === '' ? NaN : Number(v);
  if (!(x > 0 && x <= 1)) throw new InvalidArgumentError(`expected a number in (0, 1], got '${v}'`);
  return x;
}

/** For a repeatable flag (a stop string): each occurrence appends its value, which may not be empty. */
export function collect(v: string, previous: string[] = []): string[] {
  if (v === '') throw new InvalidArgumentError('expected a non-empty value');
  return [...previous, v];
}

/**
 * `--device cpu|cuda` (default cpu) for the commands that run a model in-process; the action checks it
 * with requireDevice (src/engine/device.ts) before loading anything.
 */
export function deviceOption(): Option {
  return new Option('--device <device>', 'where the model runs').choices(DEVICES).default('cpu');
}

/** `--compute-dtype f32|bf16` (default f32): the dtype of the model's matrix products (weights stay f32). */
export function computeDtypeOption(): Option {
  return new Option('--compute-dtype <dtype>', "dtype of the model's matrix products (a bf16 copy of the weights)")
    .choices(COMPUTE_DTYPES)
    .default('f32');
}
