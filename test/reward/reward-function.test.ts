// worker.reward.reward_function (EasyR1's hook) with reward_function_kwargs: the sequential form
// (once per response) and the batch form (once per group, seeing every response with its length
// and the ground truth), replacing the composite reward or added to it, run in the Piscina pool.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompositeReward, type GroupResponse } from '../../src/reward/composite.js';
import { parseRewardConfig } from '../../src/reward/config.js';

const dir = mkdtempSync(join(tmpdir(), 'medix-reward-fn-'));
// threadId says where a call ran (0: the main thread); calls.count how often the module was called.
writeFileSync(
  join(dir, 'plugin.mjs'),
  `import { threadId } from 'node:worker_threads';
let calls = 0;
export function perResponse(input, kwargs) {
  calls++;
  return { overall: input.response_length <= kwargs.max_length ? 1 : 0, length: input.response_length, gt: input.ground_truth === kwargs.expect ? 1 : 0, thread: threadId, calls };
}
export function perGroup(inputs, kwargs) {
  calls++;
  // Ranks the group's responses by length: only possible when the function sees them all at once.
  const sorted = inputs.map((x) => x.response_length).sort((a, b) => a - b);
  return inputs.map((x) => ({ overall: kwargs.scale * sorted.indexOf(x.response_length), size: inputs.length, thread: threadId, calls }));
}
export const bare = (inputs) => inputs.map(() => 0.5);
export const short = (inputs) => inputs.slice(1).map(() => 1);
export const noOverall = () => [{ format: 1 }];
`,
);
const group: GroupResponse[] = [
  { response: '<thinking>long thought</thinking><answer>calcaneus</answer>', responseLength: 30 },
  { response: '<answer>talus</answer>', responseLength: 5 },
  { response: '<thinking>x</thinking><answer>calcaneus</answer>', responseLength: 12 },
];
const gt = '<X_RAY> calcaneus';

async function reward(extra: Record<string, unknown>, workers = 1) {
  const r = await CompositeReward.create(parseRewardConfig({ workers, ...extra }), { baseDir: dir, warn: () => {} });
  t.teardown(() => r.close());
  return r;
}

t.test(
  'sequential form: once per response, with kwargs, length and ground truth; replaces the composite',
  async (t) => {
    const r = await reward({
      reward_function: 'plugin.mjs:perResponse',
      reward_type: 'sequential',
      reward_function_kwargs: { max_length: 12, expect: gt },
    });
    const out = await r.scoreGroup(group, gt);
    t.same(
      out.map((x) => x.overall),
      [0, 1, 1],
      'overall is the function’s (responses up to 12 tokens score 1)',
    );
    t.same(
      out.map((x) => x.custom['reward_function/length']),
      [30, 5, 12],
      'response_length reaches the function',
    );
    t.ok(
      out.every((x) => x.custom['reward_function/gt'] === 1),
      'the ground truth reaches it',
    );
    t.same(
      out.map((x) => x.custom.reward_function),
      out.map((x) => x.overall),
      'its overall is kept as custom.reward_function',
    );
    t.ok(
      out.every((x) => x.custom['reward_function/thread'] > 0),
      'it ran in a pool worker, not on the main thread',
    );
    t.ok(
      out.every((x) => typeof x.format === 'number' && typeof x.modality === 'number'),
      'the built-in components are still reported',
    );
  },
);

t.test('batch form: once per group, seeing all its responses; added to the composite', async (t) => {
  const base = await reward({}, 0);
  const composite = await Promise.all(group.map((g) => base.score(g.response, gt)));
  const r = await reward({
    reward_function: 'plugin.mjs:perGroup',
    reward_type: 'batch',
    reward_function_kwargs: { scale: 0.25 },
    reward_function_mode: 'add',
  });
  const out = await r.scoreGroup(group, gt);
  t.same(
    out.map((x) => x.custom.reward_function),
    [0.5, 0, 0.25],
    'rank by length within the group, times kwargs.scale',
  );
  t.ok(
    out.every((x) => x.custom['reward_function/size'] === 3),
    'the function saw the whole group',
  );
  t.ok(
    out.every((x) => x.custom['reward_function/calls'] === out[0].custom['reward_function/calls']),
    'one call for the group',
  );
  t.ok(
    out.every((x) => x.custom['reward_function/thread'] > 0),
    'in a pool worker',
  );
  out.forEach((x, i) =>
    t.ok(
      Math.abs(x.overall! - (composite[i].overall! + x.custom.reward_function)) < 1e-12,
      `response ${i + 1}: composite + function`,
    ),
  );
  const onThread = await reward({ reward_function: 'plugin.mjs:perGroup', reward_function_kwargs: { scale: 1 } }, 0);
  const here = await onThread.scoreGroup(group, gt);
  t.same(
    here.map((x) => [x.overall, x.custom['reward_function/thread']]),
    [
      [2, 0],
      [0, 0],
      [1, 0],
    ],
    'workers: 0 runs it on the calling thread; batch is the default form',
  );
});

t.test('bad scores and specs are errors naming worker.reward.reward_function', async (t) => {
  const bare = await reward({ reward_function: 'plugin.mjs:bare' }, 0);
  t.same(
    (await bare.scoreGroup(group, gt)).map((x) => x.overall),
    [0.5, 0.5, 0.5],
    'a bare number is the overall',
  );
  const short = await reward({ reward_function: 'plugin.mjs:short' }, 0);
  await t.rejects(
    short.scoreGroup(group, gt),
    /worker\.reward\.reward_function 'plugin\.mjs:short' \(reward_type batch\) returned 2 scores for 3 responses/,
  );
  const noOverall = await reward({ reward_function: 'plugin.mjs:noOverall' }, 0);
  await t.rejects(noOverall.scoreGroup(group.slice(0, 1), gt), /the score of response 1 has no 'overall'/);
  await t.rejects(
    reward({ reward_function: 'plugin.mjs:absent' }, 0),
    /worker\.reward\.reward_function 'plugin\.mjs:absent': plugin\.mjs exports no function 'absent'/,
  );
  await t.rejects(
    reward({ reward_function: 'plugin.mjs:absent' }, 1),
    /exports no function 'absent'/,
    'the pool fails at start too',
  );
  t.throws(() => parseRewardConfig({ reward_function: 'plugin.mjs' }), /reward_function: expected path:functionName/);
  t.throws(() => parseRewardConfig({ reward_type: 'parallel' }), /reward_type/);
});
