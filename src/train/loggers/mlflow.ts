// trainer.logger: mlflow. MLflow's REST API (api/2.0/mlflow) at MLFLOW_TRACKING_URI, as its own
// client reads it: the experiment trainer.project_name (created when missing), one run named
// trainer.experiment_name with the resolved config as params, each metrics row as one log-batch,
// and the run marked FINISHED at the end. MLFLOW_TRACKING_TOKEN (bearer) or
// MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (basic) authenticate, when set.
import { scalarsOf, type MetricsBackend, type MetricsRow } from './types.js';

/** MLflow's limits per log-batch request, and on a param value's length. */
const MAX_METRICS = 1000;
const MAX_PARAMS = 100;
const MAX_PARAM_CHARS = 500;

export interface MlflowOptions {
  trackingUri: string;
  experiment: string;
  runName: string;
  /** Flattened config (dotted keys) logged as the run's params. */
  params: Record<string, string>;
  env?: NodeJS.ProcessEnv;
}

export class MlflowError extends Error {}

export class MlflowBackend implements MetricsBackend {
  readonly name = 'mlflow';

  private constructor(
    private readonly base: string,
    private readonly headers: Record<string, string>,
    readonly runId: string,
  ) {}

  static async start(o: MlflowOptions): Promise<MlflowBackend> {
    const env = o.env ?? process.env;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (env.MLFLOW_TRACKING_TOKEN) headers.authorization = `Bearer ${env.MLFLOW_TRACKING_TOKEN}`;
    else if (env.MLFLOW_TRACKING_USERNAME)
      headers.authorization = `Basic ${Buffer.from(`${env.MLFLOW_TRACKING_USERNAME}:${env.MLFLOW_TRACKING_PASSWORD ?? ''}`).toString('base64')}`;
    const base = `${o.trackingUri.replace(/\/+$/, '')}/api/2.0/mlflow`;
    const call = (path: string, body?: unknown) => request(base, headers, path, body);
    const found = await call(`experiments/get-by-name?experiment_name=${encodeURIComponent(o.experiment)}`).catch(
      (e: unknown) => {
        if (e instanceof MlflowError && /RESOURCE_DOES_NOT_EXIST/.test(e.message)) return null;
        throw e;
      },
    );
    const experimentId = found
      ? (found as { experiment: { experiment_id: string } }).experiment.experiment_id
      : ((await call('experiments/create', { name: o.experiment })) as { experiment_id: string }).experiment_id;
    const run = (await call('runs/create', {
      experiment_id: experimentId,
      run_name: o.runName,
      start_time: Date.now(),
    })) as { run: { info: { run_id: string } } };
    const backend = new MlflowBackend(base, headers, run.run.info.run_id);
    const params = Object.entries(o.params).map(([key, value]) => ({ key, value: value.slice(0, MAX_PARAM_CHARS) }));
    for (let i = 0; i < params.length; i += MAX_PARAMS)
      await backend.call('runs/log-batch', { run_id: backend.runId, params: params.slice(i, i + MAX_PARAMS) });
    return backend;
  }

  private call(path: string, body: unknown): Promise<unknown> {
    return request(this.base, this.headers, path, body);
  }

  async log(row: MetricsRow): Promise<void> {
    const timestamp = Date.now();
    const metrics = scalarsOf(row).map(([key, value]) => ({ key, value, timestamp, step: row.step }));
    for (let i = 0; i < metrics.length; i += MAX_METRICS)
      await this.call('runs/log-batch', { run_id: this.runId, metrics: metrics.slice(i, i + MAX_METRICS) });
  }

  async close(): Promise<void> {
    await this.call('runs/update', { run_id: this.runId, status: 'FINISHED', end_time: Date.now() });
  }
}

async function request(base: string, headers: Record<string, string>, path: string, body?: unknown): Promise<unknown> {
  const url = `${base}/${path}`;
  const res = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new MlflowError(`${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : {};
}
