// trainer.logger backends: TensorBoard event files read back by an independent parser (other CRC-32C,
// protobufjs), MLflow's REST calls and W&B's JS SDK against local stand-in servers, a failing
// backend warned about once and counted, and a real training run with tensorboard and a dead MLflow.
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsBackends, startMetricsBackends, type MetricsBackend } from '../../src/train/loggers/index.js';
import { RunLog } from '../../src/train/run-log.js';
import { parseTrainingConfig, resolveConfigPaths } from '../../src/config/index.js';
import { Trainer } from '../../src/train/trainer.js';
import { readEventFile } from '../helpers/tfevents-reader.js';
import { standInServer } from '../helpers/stand-in-server.js';
import { tinyModelInit, writeTinyTrainData } from '../helpers/tiny-train-data.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'medix-loggers-'));
const rows = [
  { step: 0, 'val/overall': 0.25 },
  {
    step: 1,
    'reward/overall': 0.5,
    'actor/grad_norm': 1.5,
    note: 'text is not a scalar',
    'reward/accuracy_llm': Number.NaN,
  },
  { step: 2, 'reward/overall': 0.75, 'actor/grad_norm': 0.125 },
];
const noWarn = () => {};

function eventFiles(runDir: string): string[] {
  return readdirSync(join(runDir, 'tensorboard'))
    .filter((f) => f.startsWith('events.out.tfevents.'))
    .map((f) => join(runDir, 'tensorboard', f));
}

t.test('tensorboard: event files under RUN_DIR/tensorboard/ hold each metrics.jsonl key as a scalar tag', async (t) => {
  const dir = tmp();
  const backends = await startMetricsBackends({
    loggers: ['console', 'file', 'tensorboard'],
    runDir: dir,
    project: 'p',
    runName: 'r',
    config: {},
    warn: noWarn,
  });
  const log = new RunLog(dir, backends);
  for (const r of rows) log.metrics(r);
  await backends.close();
  const files = eventFiles(dir);
  t.equal(files.length, 1, 'one event file');
  const events = readEventFile(files[0]);
  t.equal(events[0].fileVersion, 'brain.Event:2', 'the first event names the format version');
  const scalars = events.slice(1);
  t.same(
    scalars.map((e) => e.step),
    [0, 1, 2],
    'one event per row, at its step',
  );
  t.same(
    scalars[1].scalars,
    { 'reward/overall': 0.5, 'actor/grad_norm': 1.5 },
    'numeric keys as tags (float32 values); text and NaN are not scalars',
  );
  t.same(scalars[2].scalars, { 'reward/overall': 0.75, 'actor/grad_norm': 0.125 });
  const jsonlKeys = new Set(
    log.readMetrics().flatMap((r) =>
      Object.entries(r)
        .filter(([k, v]) => k !== 'step' && typeof v === 'number')
        .map(([k]) => k),
    ),
  );
  t.same(new Set(scalars.flatMap((e) => Object.keys(e.scalars))), jsonlKeys, 'tags equal the metrics.jsonl keys');
  t.ok(Math.abs(scalars[0].wallTime - Date.now() / 1000) < 60, 'wall time in seconds');
  // The reader checks the checksums: a flipped payload byte is caught, so the CRCs above were verified.
  const bytes = readFileSync(files[0]);
  bytes[bytes.length - 6] ^= 1;
  writeFileSync(files[0], bytes);
  t.throws(() => readEventFile(files[0]), /CRC mismatch/);
});

t.test('mlflow: experiment, run with params, one log-batch per row, finished at close', async (t) => {
  let experiments = 0;
  const server = await standInServer((r) => {
    if (r.path.startsWith('/api/2.0/mlflow/experiments/get-by-name'))
      return { status: 404, json: { error_code: 'RESOURCE_DOES_NOT_EXIST' } };
    if (r.path === '/api/2.0/mlflow/experiments/create') return { json: { experiment_id: String(++experiments) } };
    if (r.path === '/api/2.0/mlflow/runs/create') return { json: { run: { info: { run_id: 'run-7' } } } };
    return { json: {} };
  });
  t.teardown(server.close);
  const env = { MLFLOW_TRACKING_URI: `${server.url}/`, MLFLOW_TRACKING_TOKEN: 'tok' };
  const config = {
    algorithm: { adv_estimator: 'grpo' },
    worker: { rollout: { n: 5 } },
    trainer: { logger: ['mlflow'] },
  };
  const backends = await startMetricsBackends({
    loggers: ['mlflow'],
    runDir: tmp(),
    project: 'medix-test',
    runName: 'quick',
    config,
    warn: noWarn,
    env,
  });
  for (const r of rows) backends.log(r);
  await backends.close();
  t.same(backends.failures, {});
  const calls = server.requests.map((r) => `${r.method} ${r.path.replace(/\?.*/, '')}`);
  t.same(calls, [
    'GET /api/2.0/mlflow/experiments/get-by-name',
    'POST /api/2.0/mlflow/experiments/create',
    'POST /api/2.0/mlflow/runs/create',
    'POST /api/2.0/mlflow/runs/log-batch',
    'POST /api/2.0/mlflow/runs/log-batch',
    'POST /api/2.0/mlflow/runs/log-batch',
    'POST /api/2.0/mlflow/runs/log-batch',
    'POST /api/2.0/mlflow/runs/update',
  ]);
  const req = server.requests;
  t.match(req[0].path, 'experiment_name=medix-test');
  t.same(req[1].body, { name: 'medix-test' });
  t.match(req[2].body, { experiment_id: '1', run_name: 'quick' });
  t.equal(req[2].headers.authorization, 'Bearer tok', 'MLFLOW_TRACKING_TOKEN is sent');
  t.same(
    (req[3].body as { params: unknown }).params,
    [
      { key: 'algorithm.adv_estimator', value: 'grpo' },
      { key: 'worker.rollout.n', value: '5' },
      { key: 'trainer.logger', value: '["mlflow"]' },
    ],
    'the config, flattened, as params',
  );
  const metrics = req
    .slice(4, 7)
    .map((r) => r.body as { run_id: string; metrics: { key: string; value: number; step: number }[] });
  t.ok(metrics.every((m) => m.run_id === 'run-7'));
  t.same(
    metrics[1].metrics.map(({ key, value, step }) => ({ key, value, step })),
    [
      { key: 'reward/overall', value: 0.5, step: 1 },
      { key: 'actor/grad_norm', value: 1.5, step: 1 },
    ],
  );
  t.match(req[7].body, { run_id: 'run-7', status: 'FINISHED' });
});

t.test('wandb: the JS SDK logs each row at its step to a W&B server (WANDB_BASE_URL)', async (t) => {
  const server = await standInServer((r) => {
    const query = String((r.body as { query?: string } | undefined)?.query ?? '');
    const vars = ((r.body as { variables?: Record<string, string> } | undefined)?.variables ?? {}) as Record<
      string,
      string
    >;
    if (query.includes('query Viewer'))
      return { json: { data: { viewer: { id: 'v', entity: 'medic', flags: '{}', teams: { edges: [] } } } } };
    if (query.includes('mutation UpsertBucket'))
      return {
        json: {
          data: {
            upsertBucket: {
              inserted: true,
              bucket: {
                id: 'b',
                name: vars.id ?? 'run',
                displayName: vars.displayName ?? null,
                description: null,
                config: '{}',
                sweepName: null,
                project: { id: 'p', name: vars.project ?? 'proj', entity: { id: 'e', name: 'medic' } },
              },
            },
          },
        },
      };
    return { json: {} };
  });
  t.teardown(server.close);
  const saved = { ...process.env };
  t.teardown(() => {
    process.env = saved;
  });
  Object.assign(process.env, { WANDB_BASE_URL: server.url, WANDB_API_KEY: 'k'.repeat(40), WANDB_SILENT: 'true' });
  const backends = await startMetricsBackends({
    loggers: ['wandb'],
    runDir: tmp(),
    project: 'medix-test',
    runName: 'quick',
    config: { sft: { epochs: 2 } },
    warn: (m) => t.fail(m),
  });
  for (const r of rows) backends.log(r);
  await backends.close();
  t.same(backends.failures, {});
  const upsert = server.requests.find((r) => String((r.body as { query?: string })?.query).includes('UpsertBucket'));
  t.match((upsert!.body as { variables: Record<string, unknown> }).variables, { project: 'medix-test' });
  t.equal(
    upsert!.headers.authorization,
    `Basic ${Buffer.from(`api:${'k'.repeat(40)}`).toString('base64')}`,
    'WANDB_API_KEY is used',
  );
  const history = server.requests
    .filter((r) => r.path.endsWith('/file_stream'))
    .flatMap((r) =>
      ((r.body as { files?: Record<string, { content: string[] }> }).files?.['wandb-history.jsonl']?.content ?? []).map(
        (l) => JSON.parse(l) as Record<string, number>,
      ),
    );
  t.same(
    history.map((h) => h._step),
    [0, 1, 2],
    'one history line per row, at its step',
  );
  t.match(history[1], { 'reward/overall': 0.5, 'actor/grad_norm': 1.5 });
  t.notOk('note' in history[1], 'only scalars');
});

t.test('a failing backend is warned about once, counted, and never stops the others', async (t) => {
  const warnings: string[] = [];
  let good = 0;
  const broken: MetricsBackend = {
    name: 'broken',
    log: async () => Promise.reject(new Error('HTTP 503')),
    close: () => {},
  };
  const counting: MetricsBackend = { name: 'counting', log: () => void good++, close: () => {} };
  const backends = new MetricsBackends([broken, counting], (m) => warnings.push(m));
  for (const r of rows) backends.log(r);
  await backends.close();
  t.same(backends.failures, { broken: 3 });
  t.equal(good, 3, 'the other backend got every row');
  t.equal(warnings.length, 1, 'warned once');
  t.match(warnings[0], /logger broken failed \(HTTP 503\)/);
  const missing = await startMetricsBackends({
    loggers: ['mlflow'],
    runDir: tmp(),
    project: 'p',
    runName: 'r',
    config: {},
    warn: (m) => warnings.push(m),
    env: {},
  });
  t.same(missing.failures, { mlflow: 1 }, 'a backend that cannot start counts as failed');
  t.match(warnings[1], /MLFLOW_TRACKING_URI is not set/);
});

t.test('training with tensorboard and an unreachable MLflow server finishes, counting the failures', async (t) => {
  const root = tmp();
  writeTinyTrainData(root);
  const saved = process.env.MLFLOW_TRACKING_URI;
  process.env.MLFLOW_TRACKING_URI = 'http://127.0.0.1:9'; // the discard port: nothing listens
  t.teardown(() => {
    if (saved === undefined) delete process.env.MLFLOW_TRACKING_URI;
    else process.env.MLFLOW_TRACKING_URI = saved;
  });
  const raw = {
    data: {
      train_files: 'train.jsonl',
      val_files: 'train.jsonl',
      max_prompt_length: 200,
      max_response_length: 8,
      rollout_batch_size: 2,
      val_batch_size: 2,
    },
    worker: {
      actor: {
        model: {
          init: { ...tinyModelInit },
        },
        global_batch_size: 4,
        micro_batch_size_per_device_for_update: 2,
      },
      rollout: { n: 2 },
    },
    sft: { epochs: 1, batch_size: 4 },
    trainer: {
      max_steps: 2,
      save_checkpoint_path: 'run',
      threads: 1,
      logger: ['console', 'file', 'tensorboard', 'mlflow'],
    },
  };
  const messages: string[] = [];
  const trainer = await Trainer.create(resolveConfigPaths(parseTrainingConfig(raw, 'test'), root), {
    baseDir: root,
    log: (m) => messages.push(m),
  });
  const summary = await trainer.run();
  t.equal(summary.steps, 2, 'training finished');
  t.equal(summary.logger_failures.mlflow, 1, 'the MLflow backend failed to start, counted');
  t.equal(messages.filter((m) => m.includes('logger mlflow failed')).length, 1, 'and warned about once');
  const runDir = join(root, 'run');
  t.same(JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')).logger_failures, { mlflow: 1 });
  const events = eventFiles(runDir).flatMap(readEventFile).slice(1);
  const metrics = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(events.length, metrics.length, 'an event per metrics row');
  metrics.forEach((m, i) => {
    const numeric = Object.keys(m).filter((k) => k !== 'step' && typeof m[k] === 'number');
    t.same(Object.keys(events[i].scalars).sort(), numeric.sort(), `row ${i + 1}: tags equal the keys`);
  });
});
