// Child process of test/core/backend-thread.test.ts: makes models (each with its backend thread), runs
// work on them, drops half (destroyed on their threads when collected, which --expose-gc lets it force)
// and decodes with one of the others, then lets the process end by itself, which must then exit.
// Argument: the models' config (JSON).
import { Model, packSequences, type Qwen3Config } from '../../src/engine/model.js';
import { createNativeGenerator } from '../../src/generate/native-generator.js';

const tiny = JSON.parse(process.argv[2]) as Qwen3Config;

const batch = packSequences([[1, 2, 3]]);
const kept: Model[] = [];
for (let i = 0; i < 6; i++) {
  const m = Model.create(tiny, { seed: i });
  await m.forward(batch);
  if (i % 2 === 0) kept.push(m);
}
(globalThis as { gc?: () => void }).gc?.();
await new Promise((resolve) => setImmediate(resolve));
const gen = createNativeGenerator(kept[0], 4, 8);
await gen.step({
  tokens: Int32Array.from([1, 2]),
  seqIds: [gen.addSequence()],
  cuSeqlens: Int32Array.from([0, 2]),
  logitRows: Int32Array.from([1]),
  sampling: [{ temperature: 0 }],
});
process.stdout.write(`made 6 models, dropped ${6 - kept.length}, decoded on one\n`);
