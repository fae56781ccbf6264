// worker.actor.fsdp: EasyR1's key names; enable_full_shard parses (default off; medix train with it
// is tested in test/distributed/fsdp-train.test.ts); the two keys medix does not implement are
// refused at true with the reason.
import t from 'tap';
import { TrainingConfigError, parseTrainingConfig } from '../../src/config/index.js';

const configWith = (fsdp?: object) =>
  parseTrainingConfig(
    { data: { train_files: 'train.parquet' }, worker: { actor: { model: { model_path: '/m' }, fsdp } } },
    'test',
  );
const refusal = (fsdp: object) => errorOf(() => configWith(fsdp));

const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof TrainingConfigError) return e.message;
    throw e;
  }
  throw new Error('expected a TrainingConfigError');
};

t.test('defaults: every fsdp key off', async (t) => {
  const off = { enable_full_shard: false, enable_cpu_offload: false, enable_rank0_init: false };
  t.same(configWith().worker.actor.fsdp, off);
  t.equal(configWith({ enable_full_shard: true }).worker.actor.fsdp.enable_full_shard, true);
});

t.test('keys medix does not implement are refused at true, named, with the reason', async (t) => {
  t.doesNotThrow(() => configWith({ enable_cpu_offload: false, enable_rank0_init: false }), 'false: what medix does');
  t.match(refusal({ enable_cpu_offload: true }), /worker\.actor\.fsdp\.enable_cpu_offload: not supported: /);
  t.match(refusal({ enable_rank0_init: true }), /worker\.actor\.fsdp\.enable_rank0_init: not supported: /);
  t.match(refusal({ enable_param_offload: true }), /enable_param_offload/, 'unknown keys stay errors');
});
