// trainer.logger: wandb. Weights & Biases through its JavaScript SDK (@wandb/sdk, with its peer
// graphql), which is not a dependency of medix: install it next to medix to use this backend
// (npm install @wandb/sdk graphql). The SDK reads WANDB_API_KEY (required here, so a run never stops
// to prompt for one) and WANDB_BASE_URL (a self-hosted server; default api.wandb.ai). The run goes
// to project trainer.project_name under the name trainer.experiment_name, with the resolved config.
import { scalarsOf, type MetricsBackend, type MetricsRow } from './types.js';

/** The part of the SDK used here (its own types are not needed to build medix without it). */
interface WandbRun {
  log(data: Record<string, unknown>, step?: number): void;
  finish(code?: number): Promise<void>;
}
interface WandbSdk {
  init(o: { project: string; name?: string; config?: Record<string, unknown> }): Promise<WandbRun>;
}

export class WandbSetupError extends Error {}

export interface WandbOptions {
  project: string;
  runName: string;
  config: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}

export class WandbBackend implements MetricsBackend {
  readonly name = 'wandb';

  private constructor(private readonly run: WandbRun) {}

  static async start(o: WandbOptions): Promise<WandbBackend> {
    if (!(o.env ?? process.env).WANDB_API_KEY)
      throw new WandbSetupError('trainer.logger includes wandb but WANDB_API_KEY is not set');
    const moduleName = '@wandb/sdk'; // a variable: medix builds and runs without the package
    const sdk = await import(moduleName).then(
      (m: { default: WandbSdk }) => m.default,
      (e: unknown) => {
        throw new WandbSetupError(
          `trainer.logger includes wandb but @wandb/sdk cannot be loaded (npm install @wandb/sdk graphql): ${(e as Error).message}`,
        );
      },
    );
    return new WandbBackend(await sdk.init({ project: o.project, name: o.runName, config: o.config }));
  }

  log(row: MetricsRow): void {
    this.run.log(Object.fromEntries(scalarsOf(row)), row.step);
  }

  async close(): Promise<void> {
    await this.run.finish();
  }
}
