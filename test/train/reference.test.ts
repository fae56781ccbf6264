// The reference policy: written once per run from the policy as RL starts (later policies never
// replace it), taken over from the run a fork came from, and its log-probs computed in micro-batches
// of worker.ref.micro_batch_size_per_device_for_experience (the actor's when absent).
// It is checksummed like a checkpoint and refused, naming the file, when damaged.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, type PackedBatch } from '../../src/engine/model.js';
import { ReferencePolicy } from '../../src/train/reference.js';
import { computeLogprobs } from '../../src/train/update.js';
import type { Experience } from '../../src/train/experience.js';
import { tinyQwen3Config } from '../helpers/tiny-config.js';

const shape = tinyQwen3Config;
const exps: Experience[] = [
  { promptIds: [1, 2], responseIds: [3, 4, 5] },
  { promptIds: [6], responseIds: [7, 8] },
  { promptIds: [9, 10, 11], responseIds: [12] },
];
const worker = (refMicro?: number) =>
  ({
    actor: { micro_batch_size_per_device_for_experience: 2, device: 'cpu', model: { dtype: 'f32' } },
    ref: { micro_batch_size_per_device_for_experience: refMicro },
  }) as never;

/** Sequences per forward pass of `model` while `f` runs. */
async function forwardSizes(model: Model, f: () => Promise<unknown>): Promise<number[]> {
  const sizes: number[] = [];
  const forward = model.forward.bind(model);
  model.forward = (batch: PackedBatch, o) => {
    sizes.push(batch.cuSeqlens.length - 1);
    return forward(batch, o);
  };
  await f();
  return sizes;
}

t.test('worker.ref sets the micro-batch of the reference log-probs; the actor value is the default', async (t) => {
  const policy = Model.create(shape, { seed: 1 });
  const own = await ReferencePolicy.open(mkdtempSync(join(tmpdir(), 'medix-ref-')), policy, { worker: worker(1) });
  t.same(await forwardSizes(own.model, () => own.logprobs(exps, 1)), [1, 1, 1], 'one sample per pass');
  const dflt = await ReferencePolicy.open(mkdtempSync(join(tmpdir(), 'medix-ref-')), policy, { worker: worker() });
  t.same(
    await forwardSizes(dflt.model, () => dflt.logprobs(exps, 1)),
    [2, 1],
    "the actor's micro_batch_size_per_device_for_experience",
  );
  t.same(
    await own.logprobs(exps, 1),
    await computeLogprobs(policy, exps, 3, 1),
    'the log-probs of the policy it was written from',
  );
});

t.test('written once per run; a fork takes over its source run reference', async (t) => {
  const start = Model.create(shape, { seed: 1 });
  const later = Model.create(shape, { seed: 2 });
  const run = mkdtempSync(join(tmpdir(), 'medix-ref-'));
  await ReferencePolicy.open(run, start, { worker: worker() });
  const reopened = await ReferencePolicy.open(run, later, { worker: worker() });
  const want = await computeLogprobs(start, exps, 3, 1);
  t.same(await reopened.logprobs(exps, 1), want, 'a resumed run keeps the reference of the RL start');
  const logs: string[] = [];
  const fork = await ReferencePolicy.open(mkdtempSync(join(tmpdir(), 'medix-ref-')), later, {
    worker: worker(),
    inheritFrom: run,
    log: (m) => logs.push(m),
  });
  t.same(await fork.logprobs(exps, 1), want, "a fork measures KL from its source run's reference");
  t.match(logs[0], /reference model taken from .*reference/);
  const orphan = await ReferencePolicy.open(mkdtempSync(join(tmpdir(), 'medix-ref-')), later, {
    worker: worker(),
    inheritFrom: mkdtempSync(join(tmpdir(), 'medix-noref-')),
    log: (m) => logs.push(m),
  });
  t.same(
    await orphan.logprobs(exps, 1),
    await computeLogprobs(later, exps, 3, 1),
    'no reference to take over: the policy it continues from',
  );
  t.match(logs[1], /has no reference model; the reference is the policy of the checkpoint this run continues from/);
});

t.test(
  'the reference is checksummed like a checkpoint: a damaged file is refused on reopening, naming it',
  async (t) => {
    const run = mkdtempSync(join(tmpdir(), 'medix-ref-'));
    await ReferencePolicy.open(run, Model.create(shape, { seed: 1 }), { worker: worker() });
    const checksums = JSON.parse(readFileSync(join(run, 'reference', 'checksums.json'), 'utf8'));
    t.ok(
      checksums.files['model.safetensors'] && checksums.files['config.json'],
      'every file of the reference recorded',
    );
    const weights = join(run, 'reference', 'model.safetensors');
    const bytes = readFileSync(weights);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(weights, bytes);
    const later = Model.create(shape, { seed: 2 });
    await t.rejects(
      ReferencePolicy.open(run, later, { worker: worker() }),
      /reference model .*reference does not verify: .*reference\/model\.safetensors: checksum mismatch/,
    );
    await t.rejects(
      ReferencePolicy.open(mkdtempSync(join(tmpdir(), 'medix-ref-')), later, { worker: worker(), inheritFrom: run }),
      /reference model .*reference does not verify: .*model\.safetensors: checksum mismatch/,
      'a fork does not take over a damaged reference either',
    );
    rmSync(join(run, 'reference', 'checksums.json'));
    await t.rejects(ReferencePolicy.open(run, later, { worker: worker() }), /reference\/checksums\.json: unreadable/);
  },
);
