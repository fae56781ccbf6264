// The metrics backends of trainer.logger behind one object the run log calls. A backend that fails
// never stops training: its first failure is warned about (naming the backend and the error), every
// failure is counted (summary.json's logger_failures), and the calls after it are still tried.
// Each backend's calls run in order on a promise chain, so a slow HTTP backend never reorders rows
// and never holds up a training step; close() waits for them all.
import type { MetricsBackend, MetricsRow } from './types.js';

export class MetricsBackends {
  /** Failures per backend name. */
  readonly failures: Record<string, number> = {};
  private readonly chains = new Map<MetricsBackend, Promise<void>>();

  constructor(
    private readonly backends: MetricsBackend[],
    private readonly warn: (message: string) => void,
  ) {
    for (const b of backends) this.chains.set(b, Promise.resolve());
  }

  get names(): string[] {
    return this.backends.map((b) => b.name);
  }

  /** Counts and (the first time per backend) warns; also used for a backend that could not start. */
  fail(name: string, e: unknown): void {
    this.failures[name] = (this.failures[name] ?? 0) + 1;
    if (this.failures[name] === 1)
      this.warn(
        `medix train: logger ${name} failed (${e instanceof Error ? e.message : String(e)}); training goes on, later failures are only counted`,
      );
  }

  private run(b: MetricsBackend, call: () => void | Promise<void>): void {
    const next = this.chains
      .get(b)!
      .then(call)
      .catch((e: unknown) => this.fail(b.name, e));
    this.chains.set(b, next);
  }

  log(row: MetricsRow): void {
    for (const b of this.backends) this.run(b, () => b.log(row));
  }

  async close(): Promise<void> {
    for (const b of this.backends) this.run(b, () => b.close());
    await Promise.all(this.chains.values());
  }
}
