// Typed face of `medix selftest --dist`'s native part (native/dist/selftest.h): every collective on
// each engine the run can use, against its direct formula, and the engines against each other.
import { native } from './native.js';

export interface CollectiveCheck {
  collective: 'allreduce_sum' | 'reduce_sum' | 'broadcast' | 'allgather_equal' | 'reduce_scatter_sum';
  dtype: 'f32' | 'f64' | 'bf16';
  /** This rank's result equals the formula bit for bit. */
  pass: boolean;
  mismatches: number;
}

export interface EngineSelftest {
  engine: 'mpi' | 'single' | 'nccl';
  ran: boolean;
  /** Why the engine did not run ('' when it ran). */
  reason: string;
  checks: CollectiveCheck[];
}

export interface DistSelftest {
  rank: number;
  size: number;
  /** The MPI world (or a world of one) on host buffers. */
  host: EngineSelftest;
  /** NCCL on device buffers, when every rank has a CUDA device and the library. */
  nccl: EngineSelftest;
  /** Checks whose result differs between NCCL and the host engine on this rank. */
  enginesDiffer: number;
  /** Failed checks and engine differences over every rank: 0 means the run may trust its collectives. */
  failedAllRanks: number;
}

interface SelftestAddon {
  distSelftest(): Promise<DistSelftest>;
}

/** Collective: every rank of the world must call it. */
export function distSelftest(): Promise<DistSelftest> {
  return native<SelftestAddon>().distSelftest();
}
