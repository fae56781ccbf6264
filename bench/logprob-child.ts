// One log-prob head forward, ONNX Runtime's graph (bench/logprob-onnx.ts) or medix's fused kernel, in a
// process of its own so that the growth of its peak RSS is its own. The fused_logprob benchmark runs it:
//   node --import tsx bench/logprob-child.ts ort|fused T H V REPS THREADS
// and reads one JSON line: { ms (best of REPS after a warm-up), rssGrowthBytes, selfReportedBytes }.
// The baseline RSS is taken once the inputs exist (and ONNX Runtime's session is created).
import ort from 'onnxruntime-node';

import { logprobForward } from '../src/engine/losses.js';
import { setThreads } from '../src/engine/system.js';
import { logprobInputs } from './inputs.js';
import { logprobOnnx } from './logprob-onnx.js';

const [mode, ...sizes] = process.argv.slice(2);
const [T, H, V, reps, threads] = sizes.map(Number);
if (!['ort', 'fused'].includes(mode) || sizes.length !== 5 || sizes.some((s) => !Number.isInteger(Number(s))))
  throw new Error('usage: logprob-child.ts ort|fused T H V REPS THREADS');

const peakRss = () => process.resourceUsage().maxRSS * 1024; // maxRSS is in KiB
const { hidden, head } = logprobInputs(T, H, V);
const targetOf = (t: number) => (t * 7919) % V;

async function bestMs(run: () => Promise<unknown>): Promise<number> {
  await run(); // warm-up: first touch of every buffer, thread start
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await run();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

let run: () => Promise<unknown>;
let selfReported = 0;
if (mode === 'ort') {
  const headT = new Float32Array(H * V);
  for (let v = 0; v < V; v++) for (let h = 0; h < H; h++) headT[h * V + v] = head[v * H + h];
  const feeds = {
    hidden: new ort.Tensor('float32', hidden, [T, H]),
    head_t: new ort.Tensor('float32', headT, [H, V]),
    targets: new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, t) => BigInt(targetOf(t))), [T, 1]),
  };
  const session = await ort.InferenceSession.create(logprobOnnx(), { intraOpNumThreads: threads, interOpNumThreads: 1 });
  run = () => session.run(feeds);
} else {
  setThreads(threads);
  const targets = Int32Array.from({ length: T }, (_, t) => targetOf(t));
  run = async () => {
    selfReported = (await logprobForward(hidden, head, targets, { hidden: H, vocab: V })).peakBytes;
  };
}
const baseline = peakRss();
const ms = await bestMs(run);
console.log(JSON.stringify({ ms, rssGrowthBytes: peakRss() - baseline, selfReportedBytes: selfReported }));
