// Typed face of the run's processes (native/dist, native/bindings/dist.cc). A process started by
// an MPI launcher (mpirun, mpiexec, srun with PMI) is one rank of an MPI world, when the addon was
// built with MPI; any other process is a world of one, where every collective is the identity.
//
// Every rank must call the same collectives in the same order, awaiting each before the next.
import { native } from './native.js';

export type WorldBackend = 'mpi' | 'single';
/** The element types the numeric collectives carry (sums are computed in that type). */
export type FloatArray = Float32Array | Float64Array;

interface DistAddon {
  worldInfo(): { rank: number; size: number; localRank: number; localSize: number; backend: WorldBackend };
  allreduceSum<A extends FloatArray>(values: A): Promise<A>;
  reduceSum<A extends FloatArray>(values: A, root: number): Promise<A>;
  allgatherEqual<A extends FloatArray>(shard: A): Promise<A>;
  reduceScatterSum<A extends FloatArray>(values: A): Promise<A>;
  broadcast(bytes: Uint8Array | undefined, root: number): Promise<Uint8Array>;
  allgather(bytes: Uint8Array): Promise<Uint8Array[]>;
  barrier(): Promise<void>;
  abortWorld(code: number): never;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class World {
  readonly rank: number;
  readonly size: number;
  /** Rank and count among the processes on this machine (to share its cores between them). */
  readonly localRank: number;
  readonly localSize: number;
  readonly backend: WorldBackend;

  constructor(private readonly addon: DistAddon) {
    const info = addon.worldInfo();
    this.rank = info.rank;
    this.size = info.size;
    this.localRank = info.localRank;
    this.localSize = info.localSize;
    this.backend = info.backend;
  }

  /** Rank 0 writes what the run writes once (logs, progress, report, manifests). */
  get isRoot(): boolean {
    return this.rank === 0;
  }

  /**
   * The items this rank handles when work is dealt out: every size-th one, starting at its rank
   * (item i goes to rank i mod size, so every rank knows who handled what).
   */
  share<T>(items: readonly T[]): T[] {
    return items.filter((_, i) => i % this.size === this.rank);
  }

  /** The element-wise sum over the ranks of each rank's values (a Float32Array sums in float32). */
  async allreduceSum(values: Float32Array): Promise<Float32Array>;
  async allreduceSum(values: ArrayLike<number>): Promise<Float64Array>;
  async allreduceSum(values: ArrayLike<number>): Promise<FloatArray> {
    const v = values instanceof Float32Array ? values.slice() : Float64Array.from(values);
    return this.size === 1 ? v : this.addon.allreduceSum(v);
  }

  /** On root, the element-wise sum over the ranks of each rank's values; on the others, their own values. */
  async reduceSum<A extends FloatArray>(values: A, root = 0): Promise<A> {
    return this.size === 1 ? (values.slice() as A) : this.addon.reduceSum(values, root);
  }

  /** Every rank's shard (all of one length and type), concatenated in rank order. */
  async allgatherEqual<A extends FloatArray>(shard: A): Promise<A> {
    return this.size === 1 ? (shard.slice() as A) : this.addon.allgatherEqual(shard);
  }

  /**
   * This rank's shard of the element-wise sum over the ranks: `values` hold `size` equal shards, and
   * the sum of shard r lands on rank r.
   */
  async reduceScatterSum<A extends FloatArray>(values: A): Promise<A> {
    if (values.length % this.size !== 0)
      throw new RangeError(`reduceScatterSum: ${values.length} values do not split into ${this.size} equal shards`);
    return this.size === 1 ? (values.slice() as A) : this.addon.reduceScatterSum(values);
  }

  /** Root's bytes on every rank (the others' argument is ignored). */
  async broadcast(bytes: Uint8Array | undefined, root = 0): Promise<Uint8Array> {
    if (this.size === 1) return bytes ?? new Uint8Array(0);
    return this.addon.broadcast(bytes, root);
  }

  /** Every rank's bytes, in rank order. */
  async allgather(bytes: Uint8Array): Promise<Uint8Array[]> {
    return this.size === 1 ? [bytes] : this.addon.allgather(bytes);
  }

  /** Every rank's value (JSON-serialisable), in rank order. */
  async allgatherJson<T>(value: T): Promise<T[]> {
    if (this.size === 1) return [value];
    const all = await this.addon.allgather(encoder.encode(JSON.stringify(value)));
    return all.map((b) => JSON.parse(decoder.decode(b)) as T);
  }

  /** Root's value (JSON-serialisable) on every rank. */
  async broadcastJson<T>(value: T | undefined, root = 0): Promise<T> {
    if (this.size === 1) return value as T;
    const b = await this.addon.broadcast(this.rank === root ? encoder.encode(JSON.stringify(value)) : undefined, root);
    return JSON.parse(decoder.decode(b)) as T;
  }

  /**
   * `decide`'s result, computed once on the root and received by every rank (decisions that read
   * shared files, or ask a shared server once, so that all ranks act on the same answer; it may be async).
   * When it throws, every rank throws an Error with its message.
   */
  async fromRoot<T>(decide: () => T | Promise<T>): Promise<T> {
    if (this.size === 1) return decide();
    let outcome: { value: T } | { error: string } | undefined;
    if (this.isRoot) {
      try {
        outcome = { value: await decide() };
      } catch (e) {
        outcome = { error: e instanceof Error ? e.message : String(e) };
      }
    }
    const got = await this.broadcastJson(outcome);
    if ('error' in got) throw new Error(got.error);
    return got.value;
  }

  async barrier(): Promise<void> {
    if (this.size > 1) await this.addon.barrier();
  }

  /**
   * Ends every process of the run with `code`: a rank that failed alone would leave the others
   * waiting in their next collective forever.
   */
  abort(code = 1): never {
    return this.addon.abortWorld(code);
  }
}

let theWorld: World | null = null;

/**
 * This process's world. The first call connects the ranks (MPI_Init) when an MPI launcher started
 * the process; it throws when a launcher started several processes that this build cannot connect.
 */
export function world(): World {
  theWorld ??= new World(native<DistAddon>());
  return theWorld;
}

/** The world if world() has connected it, else null (nothing is started). */
export function startedWorld(): World | null {
  return theWorld;
}
