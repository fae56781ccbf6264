// Evaluation throughput: the evaluate phase against a local judge that answers after a fixed
// latency, so the figure shows how well the phase keeps `concurrency` samples in flight. Each
// sample is judged in 3 sequential rounds, so the ideal is concurrency / (3 x latency) samples/s;
// `concurrency_efficiency` is the measured rate over that ideal.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EndpointChatModel } from '../src/eval/endpoint-model.js';
import { runEvaluate } from '../src/eval/evaluate-phase.js';
import type { GenerationRecord, JudgmentRecord } from '../src/eval/records.js';
import { ResultsFile } from '../src/eval/results-store.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';

const LATENCY_MS = 50;
const ROUNDS = 3;

async function judgeServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () =>
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            choices: [{ index: 0, message: { role: 'assistant', content: '{"score": 1}' }, finish_reason: 'stop' }],
          }),
        );
      }, LATENCY_MS),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function run(ctx: BenchContext): Promise<BenchRecord[]> {
  const concurrency = 16;
  const samples = ctx.quick ? 32 : 256;
  const dir = mkdtempSync(join(tmpdir(), 'medix-bench-eval-'));
  const server = await judgeServer();
  try {
    const generations = new ResultsFile<GenerationRecord>(join(dir, 'generations.jsonl'));
    for (let i = 0; i < samples; i++)
      generations.append({
        key: `b/${i}`,
        task: 'b',
        id: String(i),
        status: 'ok',
        scoring: 'binary',
        prompt: `Question ${i}?`,
        reference: 'answer',
        images: 0,
        output: 'an answer in words',
        seconds: 0,
      });
    const judgments = new ResultsFile<JudgmentRecord>(join(dir, 'judgments.jsonl'));
    const t0 = performance.now();
    const summary = await runEvaluate(generations, judgments, new EndpointChatModel('judge', server.url), {
      concurrency,
      rounds: ROUNDS,
      attemptsPerRound: 1,
      maxTokens: 16,
    });
    const seconds = (performance.now() - t0) / 1000;
    if (summary.ok !== samples) throw new Error(`${summary.errors} of ${samples} samples failed`);
    const rate = samples / seconds;
    const ideal = concurrency / ((ROUNDS * LATENCY_MS) / 1000);
    const note = `${samples} samples, concurrency ${concurrency}, ${ROUNDS} rounds x ${LATENCY_MS} ms judge latency`;
    ctx.log(`${rate.toFixed(1)} samples/s; ideal ${ideal.toFixed(1)}`);
    return [
      { name: 'eval', metric: 'samples_per_s', value: rate, unit: 'samples/s', note },
      {
        name: 'eval',
        metric: 'concurrency_efficiency',
        value: rate / ideal,
        unit: 'fraction',
        note: `measured / (concurrency / (rounds x latency))`,
      },
    ];
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const bench: BenchModule = { order: 50, run };
export default bench;
