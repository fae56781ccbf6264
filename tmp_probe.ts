import { Model } from './src/engine/model.js';
import { Qwen3GenerationEngine } from './src/generate/engine.js';
import { full } from './bench/train_step.bench.js';
const model = Model.create(full, { seed: 1 });
const engine = new Qwen3GenerationEngine(model, { maxBatchSize: 128, maxCachedTokens: 128 * 200 });
const ids = Array.from({ length: 64 }, (_, i) => (i * 7919 + 13) % 8192);
async function run(n: number, tokens: number) {
  let first = 0, last = 0, cnt = 0, dec = 0;
  await engine.generate({ promptIds: ids, params: { n, maxNewTokens: tokens, temperature: 1, seed: 1, ignoreEos: true },
    onToken: () => { const t = performance.now(); if (cnt < n) { cnt++; first = t; } else { dec++; last = t; } } });
  return dec / ((last - first) / 1000);
}
await run(1, 4);
const out: string[] = [];
for (const n of (process.argv[2] ?? '1,8,8,1,8').split(',').map(Number)) out.push(`b${n} ${(await run(n, 16)).toFixed(0)}`);
console.log(out.join(' | '));
await engine.close();
