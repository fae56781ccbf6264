// Wall-clock time of the named stages of one training step (rollout, reward, old_logprob, ...), for
// metrics.jsonl as timing/stage/<name>. Stages run one after another, so their sum never exceeds
// the step's wall time; what the step does between stages (bookkeeping) is the difference.

export type StageMetrics = Record<`timing/stage/${string}`, number>;

export class StageClock {
  private readonly seconds = new Map<string, number>();
  private readonly started = performance.now();

  /** Starts (part of) stage `name`; the returned function ends it. A stage timed twice accumulates. */
  start(name: string): () => void {
    const t0 = performance.now();
    return () => this.add(name, (performance.now() - t0) / 1000);
  }

  /** Runs `work` as (part of) stage `name`. */
  async time<T>(name: string, work: () => Promise<T>): Promise<T> {
    const stop = this.start(name);
    try {
      return await work();
    } finally {
      stop();
    }
  }

  /**
   * Adds `seconds` measured elsewhere to stage `name`: for stages that interleave inside one call
   * (generation and the reward of the samples already generated) and time themselves.
   */
  add(name: string, seconds: number): void {
    this.seconds.set(name, (this.seconds.get(name) ?? 0) + Math.max(0, seconds));
  }

  /** Seconds since the clock was made: the step's wall time so far. */
  elapsed(): number {
    return (performance.now() - this.started) / 1000;
  }

  /** Every stage timed so far, in the order first timed. */
  metrics(): StageMetrics {
    const out: StageMetrics = {};
    for (const [name, s] of this.seconds) out[`timing/stage/${name}`] = s;
    return out;
  }
}
