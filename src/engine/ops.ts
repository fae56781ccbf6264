// Typed face of the op table (native/core/op_registry.h, native/bindings/run_op.cc): every op family
// is declared once in C++ (arguments, shape rules, options, backend ops) and runs, forward or backward,
// through runOp on any backend this build has. The per-family modules (layers.ts, attention.ts,
// logprob.ts, adamw.ts, vision.ts, moe.ts) are small CPU wrappers over it with named arguments.
//
// runOp(name, backend, inputs, options, dtype): name is '<family>.forward' or '<family>.backward';
// dtype ('f32' by default) picks the family's entry in that dtype (bf16: weights or KV cache as
// Uint16Arrays of bf16 bits, activations f32); inputs are typed arrays by argument name
// (Float32Array, Uint16Array for bf16 arguments, or Int32Array for ids, positions and offsets);
// options are numbers, booleans, strings or integer lists. The result holds every output as a fresh
// array (gradients zeroed, then accumulated), every in/out argument (updated in place), and `value`,
// the op's scalar result (sumSquares' sum, the log-prob head's peak bytes; 0 for the others). Bad
// input throws an Error naming the op, the argument or option and what was expected; an op the
// backend lacks throws naming the op, dtype and backend.
import { native } from './native.js';

/**
 * A backend by name: 'cuda' where this build has CUDA and a device; 'cuda-guard' for tests, CUDA's memory
 * contract over the CPU ops (native/tests/guard_backend.h: arguments in memory the host cannot touch
 * outside an op, every pointer checked), so device paths are tested on any machine.
 */
export type OpBackend = 'cpu' | 'cuda' | 'cuda-guard';
export type OpDtype = 'f32' | 'bf16';
export type OpTensor = Float32Array | Int32Array | Uint16Array;
export type OpInputs = Record<string, OpTensor | null | undefined>;

/** One entry of the op table: a family in one dtype. */
export interface OpInfo {
  /** e.g. 'rmsnorm'; runOp names its passes 'rmsnorm.forward' / 'rmsnorm.backward'. */
  family: string;
  dtype: OpDtype;
  /** Backends of this build ('cpu', and 'cuda' where CUDA is built) that implement every backend op it runs. */
  backends: OpBackend[];
  /** The passes' names in errors and in the per-family wrappers, e.g. 'rmsnormForward'. */
  forward: string;
  backward?: string;
}

interface RunOpAddon {
  runOp(name: string, backend: OpBackend, inputs: OpInputs, options: object, dtype?: OpDtype): unknown;
  runOpAsync(name: string, backend: OpBackend, inputs: OpInputs, options: object, dtype?: OpDtype): Promise<unknown>;
  opTable(): OpInfo[];
  opSupports(backend: string, family: string, dtype: string): boolean;
}

const addon = native<RunOpAddon>();

/** Runs one pass of a registered op in `dtype`; R names the outputs the caller reads. */
export function runOp<R>(
  name: string,
  backend: OpBackend,
  inputs: OpInputs,
  options: object,
  dtype: OpDtype = 'f32',
): R & { value: number } {
  return addon.runOp(name, backend, inputs, options, dtype) as R & { value: number };
}

/**
 * runOp on a libuv worker thread (long ops: attention, the log-prob head). Bad input throws at once,
 * as runOp does; the promise rejects only for errors of the work itself. Int32 inputs are copied;
 * leave the Float32 inputs unchanged until the promise settles.
 */
export function runOpAsync<R>(
  name: string,
  backend: OpBackend,
  inputs: OpInputs,
  options: object,
  dtype: OpDtype = 'f32',
): Promise<R & { value: number }> {
  return addon.runOpAsync(name, backend, inputs, options, dtype) as Promise<R & { value: number }>;
}

/** Every registered entry (family and dtype), in table order. */
export function opTable(): OpInfo[] {
  return addon.opTable();
}

/**
 * Whether `backend` implements `family` in `dtype`: it registered every backend op the entry runs ('cuda':
 * what this build's kernels registered, false in a build without CUDA; 'cuda-guard' runs the CPU's ops).
 */
export function opSupports(backend: OpBackend, family: string, dtype: OpDtype = 'f32'): boolean {
  return addon.opSupports(backend, family, dtype);
}
