// StageClock: stages accumulate, come out as timing/stage/<name> in the order first timed, are
// never negative, and together fit in the clock's elapsed time (stages run one after another).
import t from 'tap';

import { StageClock } from '../../src/train/stage-clock.js';

const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));

t.test('stages accumulate and fit in the elapsed time', async (t) => {
  const clock = new StageClock();
  await clock.time('rollout', () => pause(5));
  const stop = clock.start('update');
  await pause(5);
  stop();
  await clock.time('rollout', () => pause(5));
  clock.add('reward', 0.001);
  const m = clock.metrics();
  t.same(Object.keys(m), ['timing/stage/rollout', 'timing/stage/update', 'timing/stage/reward']);
  // setTimeout may fire up to a millisecond early; 4 ms per pause is a safe floor.
  t.ok(m['timing/stage/rollout'] >= 0.008, `two rollout parts add up (${m['timing/stage/rollout']} s)`);
  t.equal(m['timing/stage/reward'], 0.001, 'an added time is kept as given');
  const sum = Object.values(m).reduce((a, x) => a + x, 0);
  t.ok(sum - 0.001 <= clock.elapsed(), 'the timed stages fit in the elapsed time');
});

t.test('a failing stage is still timed; a negative added time counts as 0', async (t) => {
  const clock = new StageClock();
  await t.rejects(
    clock.time('update', () => Promise.reject(new Error('boom'))),
    /boom/,
  );
  clock.add('reward', -1);
  const m = clock.metrics();
  t.ok(m['timing/stage/update'] >= 0, 'timed');
  t.equal(m['timing/stage/reward'], 0, 'clamped at 0');
});
