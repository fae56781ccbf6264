// A model's backend work runs on the model's own thread (native/core/backend_thread.h): its
// construction, its sync calls (getParam, setParam, zeroGrad), its async ones (forward, backward,
// optimizerStep) and its generators' steps all run on one OS thread, never the JS main thread nor a
// libuv worker, and two models run on two threads. An error there still rejects the call with its
// message, and a process that makes and drops models exits.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Model, nativeModelHandle, packSequences, type Qwen3Config } from '../../src/engine/model.js';
import { createNativeGenerator } from '../../src/generate/native-generator.js';

const tiny: Qwen3Config = {
  vocabSize: 40,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 4,
  ropeTheta: 10000,
  rmsEps: 1e-6,
  tieEmbeddings: false,
};

// The OS thread ids the model's backend work ran on (Qwen3Model.workThreads, native/bindings/model.cc).
function workThreads(model: Model): number[] {
  return (nativeModelHandle(model) as { workThreads(): number[] }).workThreads();
}

const batch = packSequences([
  [1, 2, 3, 4],
  [5, 6, 7],
]);

async function trainStep(model: Model): Promise<void> {
  const { logp } = await model.forward(batch, { training: true });
  model.zeroGrad();
  await model.backward({ dlogp: new Float32Array(logp.length).fill(1) });
  await model.optimizerStep({ lr: 1e-3 });
}

async function decode(model: Model, steps: number): Promise<void> {
  const gen = createNativeGenerator(model, 4, 8);
  const seq = gen.addSequence();
  let tokens: Int32Array = Int32Array.from([1, 2, 3]);
  for (let i = 0; i < steps; i++) {
    const out = await gen.step({
      tokens,
      seqIds: [seq],
      cuSeqlens: Int32Array.from([0, tokens.length]),
      logitRows: Int32Array.from([tokens.length - 1]),
      sampling: [{ temperature: 0 }],
    });
    tokens = out.tokens;
  }
  gen.close();
}

t.test('each model runs all its work on one thread of its own, concurrently with another model', async (t) => {
  const a = Model.create(tiny, { seed: 1 });
  const b = Model.create(tiny, { seed: 2 });
  const name = a.parameters()[0].name;
  for (let round = 0; round < 8; round++) {
    // Both models busy at once, so that libuv's workers would be spread over both if they ran the work.
    await Promise.all([trainStep(a), trainStep(b)]);
    await Promise.all([decode(a, 3), decode(b, 3)]);
    a.setParameter(name, b.getParameter(name));
  }
  const ta = workThreads(a);
  const tb = workThreads(b);
  t.equal(ta.length, 1, `model a's work ran on one thread: ${ta}`);
  t.equal(tb.length, 1, `model b's work ran on one thread: ${tb}`);
  t.not(ta[0], tb[0], 'two models, two threads');
  // On Linux the main thread's id is the process id.
  t.notOk(ta.includes(process.pid) || tb.includes(process.pid), 'not the JS main thread');
});

t.test('an error on the model thread rejects the call with its message; the thread goes on', async (t) => {
  const m = Model.create(tiny, { seed: 3 });
  await m.forward(batch);
  await t.rejects(m.backward({ dlogp: new Float32Array(batch.tokens.length) }), {
    message: /^backward: call forward with training: true first/,
  });
  const { logp } = await m.forward(batch);
  t.equal(logp.length, batch.tokens.length, 'a later call runs');
  t.equal(workThreads(m).length, 1);
});

t.test('a process that makes, uses and drops models exits', async (t) => {
  const script = join(import.meta.dirname, '../helpers/drop-models.ts');
  // The limit only turns a hang at exit into a failure; the script takes a second or two.
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, JSON.stringify(tiny)], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  t.equal(r.signal, null, `not killed (a hang at exit): ${r.stderr}`);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^made 6 models, dropped 3, decoded on one$/m);
});
