// Training progress on the terminal: a live bar (cli-progress) with the step, ETA, the time of each
// phase of the last step and the mean reward. When stderr is not a terminal (CI, log files, Slurm)
// it prints one plain line per step instead, so logs stay readable.
import cliProgress from 'cli-progress';

export interface StepSummary {
  step: number;
  /** Seconds spent per phase in this step, e.g. { rollout: 3.1, reward: 0.4, update: 5.2 }. */
  timing: Record<string, number>;
  reward?: number;
}

export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly started = Date.now();

  constructor(
    private readonly totalSteps: number,
    private readonly firstStep = 0,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    if (stream.isTTY) {
      this.bar = new cliProgress.SingleBar(
        {
          stream,
          format: 'step {value}/{total} [{bar}] eta {eta_formatted} | {phases} | reward {reward}',
          hideCursor: true,
          etaBuffer: 8,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(totalSteps, firstStep, { phases: '', reward: '-' });
    }
  }

  static describe(s: StepSummary): { phases: string; reward: string } {
    return {
      phases: Object.entries(s.timing)
        .map(([k, v]) => `${k} ${v.toFixed(1)}s`)
        .join(' '),
      reward: s.reward === undefined || !Number.isFinite(s.reward) ? '-' : s.reward.toFixed(3),
    };
  }

  update(s: StepSummary): void {
    const d = Progress.describe(s);
    if (this.bar) {
      this.bar.update(s.step, d);
      return;
    }
    const done = s.step - this.firstStep;
    const perStep = done > 0 ? (Date.now() - this.started) / 1000 / done : 0;
    const eta = Math.max(0, (this.totalSteps - s.step) * perStep);
    this.stream.write(
      `step ${s.step}/${this.totalSteps} | eta ${eta.toFixed(0)}s | ${d.phases} | reward ${d.reward}\n`,
    );
  }

  stop(): void {
    this.bar?.stop();
  }
}
