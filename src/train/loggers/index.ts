// trainer.logger as EasyR1 names it: console and file are always on here (the progress lines, and
// metrics.jsonl, which the report and --resume read), tensorboard, mlflow and wandb are started on
// request. A backend that cannot start is treated like one that fails later: warned, counted.
import { MetricsBackends } from './backends.js';
import { MlflowBackend } from './mlflow.js';
import { TensorBoardBackend } from './tensorboard.js';
import type { LoggerName, MetricsBackend } from './types.js';
import { WandbBackend } from './wandb.js';

export { MetricsBackends } from './backends.js';
export { LOGGERS, type LoggerName, type MetricsBackend, type MetricsRow } from './types.js';

export interface BackendOptions {
  loggers: readonly LoggerName[];
  runDir: string;
  /** trainer.project_name: the MLflow experiment and the W&B project. */
  project: string;
  /** trainer.experiment_name: the MLflow and W&B run name. */
  runName: string;
  /** The resolved config: W&B's run config, MLflow's params (flattened). */
  config: Record<string, unknown>;
  warn: (message: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** {a: {b: 1}} -> {"a.b": "1"}; lists stay whole, as JSON. */
export function flattenConfig(tree: Record<string, unknown>, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v))
      Object.assign(out, flattenConfig(v as Record<string, unknown>, key));
    else if (v !== undefined) out[key] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

export async function startMetricsBackends(o: BackendOptions): Promise<MetricsBackends> {
  const env = o.env ?? process.env;
  const started: MetricsBackend[] = [];
  const failedToStart: [string, unknown][] = [];
  const start = async (name: string, make: () => MetricsBackend | Promise<MetricsBackend>) => {
    try {
      started.push(await make());
    } catch (e) {
      failedToStart.push([name, e]);
    }
  };
  const wanted = new Set(o.loggers);
  if (wanted.has('tensorboard')) await start('tensorboard', () => new TensorBoardBackend(o.runDir));
  if (wanted.has('mlflow'))
    await start('mlflow', () => {
      const trackingUri = env.MLFLOW_TRACKING_URI;
      if (!trackingUri) throw new Error('trainer.logger includes mlflow but MLFLOW_TRACKING_URI is not set');
      return MlflowBackend.start({
        trackingUri,
        experiment: o.project,
        runName: o.runName,
        params: flattenConfig(o.config),
        env,
      });
    });
  if (wanted.has('wandb'))
    await start('wandb', () => WandbBackend.start({ project: o.project, runName: o.runName, config: o.config, env }));
  const backends = new MetricsBackends(started, o.warn);
  for (const [name, e] of failedToStart) backends.fail(name, e);
  return backends;
}
