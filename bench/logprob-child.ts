// One log-prob head forward, ONNX Runtime's graph (bench/logprob-onnx.ts) or medix's fused kernel, in a
// process of its own so that the growth of its peak RSS is its own. The fused_logprob benchmark runs it:
//   node --import tsx bench/logprob-child.ts ort|fused T H V REPS THREADS
// and reads one JSON line: { ms (best of REPS after a warm-up), rssGrowthBytes, selfReportedBytes }.
// The growth is the peak RSS of the runs over the RSS once the inputs exist (and ONNX Runtime's session
// is created); on Linux the kernel's peak is reset at that point (/proc/self/clear_refs), elsewhere the
// process's lifetime peak is used, which can hide a growth smaller than what building the inputs took.
import fs from 'node:fs';

import ort from 'onnxruntime-node';

import { logprobForward } from '../src/engine/logprob.js';
import { setThreads } from '../src/engine/system.js';
import { logprobInputs } from './inputs.js';
import { logprobOnnx } from './logprob-onnx.js';

const [mode, ...sizes] = process.argv.slice(2);
const [T, H, V, reps, threads] = sizes.map(Number);
if (!['ort', 'fused'].includes(mode) || sizes.length !== 5 || sizes.some((s) => !Number.isInteger(Number(s))))
  throw new Error('usage: logprob-child.ts ort|fused T H V REPS THREADS');

/** A field of /proc/self/status in bytes, or undefined off Linux. */
function procStatus(field: string): number | undefined {
  if (!fs.existsSync('/proc/self/status')) return undefined;
  const kib = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
  return kib === undefined ? undefined : Number(kib) * 1024;
}

/** Current RSS, after resetting the peak where the kernel allows it. */
function rssBaseline(): number {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5'); // 5: reset the peak RSS (VmHWM) to the current RSS
    return procStatus('VmRSS')!;
  } catch {
    return process.resourceUsage().maxRSS * 1024; // maxRSS is in KiB
  }
}

const peakRss = () => procStatus('VmHWM') ?? process.resourceUsage().maxRSS * 1024;
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
    targets: new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: T }, (_, t) => BigInt(targetOf(t))),
      [T, 1],
    ),
  };
  const options = { intraOpNumThreads: threads, interOpNumThreads: 1 };
  const session = await ort.InferenceSession.create(logprobOnnx(), options);
  run = () => session.run(feeds);
} else {
  setThreads(threads);
  const targets = Int32Array.from({ length: T }, (_, t) => targetOf(t));
  run = async () => {
    selfReported = (await logprobForward(hidden, head, targets, { hidden: H, vocab: V })).peakBytes;
  };
}
const baseline = rssBaseline();
const ms = await bestMs(run);
console.log(JSON.stringify({ ms, rssGrowthBytes: peakRss() - baseline, selfReportedBytes: selfReported }));
