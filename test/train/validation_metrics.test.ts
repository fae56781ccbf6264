// Held-out metrics: each reward component's mean over every sample, and the accuracy per modality when
// the rows hold more than one, so a modality at chance shows beside one the model has learnt.
import t from 'tap';
import type { RewardResult } from '../../src/reward/composite.js';
import { accuracyByModality, modalityName, validationMetrics } from '../../src/train/validation-metrics.js';

function scored(answer: string, accuracy: number | null, format = 1): { answer: string; reward: RewardResult } {
  const overall = accuracy === null ? null : 0.1 * format + 0.9 * accuracy;
  return {
    answer,
    reward: {
      overall,
      format,
      accuracy_llm: accuracy,
      accuracy_embed: accuracy,
      modality: 1,
      custom: {},
      reasons: {},
      unavailable: [],
    },
  };
}

t.test('per-modality accuracy beside the overall means', async (t) => {
  const m = validationMetrics([
    scored('<X_RAY> left', 1),
    scored('<X_RAY> right', 1),
    scored('<CT_SCAN> yes', 0),
    scored('<CT_SCAN> no', 1),
    scored('<CT_SCAN> no', null, 0), // judge unavailable: left out of the accuracy means, not counted as 0
  ]);
  t.equal(m['val/accuracy_llm'], 3 / 4);
  t.equal(m['val/accuracy_llm/X_RAY'], 1);
  t.equal(m['val/accuracy_llm/CT_SCAN'], 1 / 2);
  t.equal(m['val/format'], 4 / 5, 'the other components over every sample they scored');
  t.same(accuracyByModality(m), { CT_SCAN: 1 / 2, X_RAY: 1 });
});

t.test('one modality: no breakdown (it would repeat the mean); rows without a tag are NO_TAG', async (t) => {
  const one = validationMetrics([scored('<X_RAY> left', 1), scored('<X_RAY> right', 0)]);
  t.same(Object.keys(one).sort(), [
    'val/accuracy_embed',
    'val/accuracy_llm',
    'val/format',
    'val/modality',
    'val/overall',
  ]);
  t.same(accuracyByModality(one), {});
  const mixed = validationMetrics([scored('<X_RAY> left', 1), scored('left', 0)]);
  t.same(accuracyByModality(mixed), { NO_TAG: 0, X_RAY: 1 });
});

t.test('modality names: case folded as the modality reward compares, safe as metric keys', async (t) => {
  t.equal(modalityName('<x_ray> left'), 'X_RAY');
  t.equal(modalityName('<CT/MRI (fused)> yes'), 'CT_MRI_FUSED_', 'MLflow refuses "/", "(" and " " in a key');
  t.equal(modalityName('<> yes'), 'NO_TAG');
  t.equal(modalityName('<untagged> yes'), 'UNTAGGED', 'a real tag never merges with rows without one');
  const m = validationMetrics([scored('<x_ray> left', 1), scored('<X_RAY> right', 0), scored('<CT_SCAN> no', 1)]);
  t.same(accuracyByModality(m), { CT_SCAN: 1, X_RAY: 1 / 2 }, 'one group per modality, whatever its case');
});

t.test('a modality without any accuracy (the judge down for all its rows) is null, as JSON writes it', async (t) => {
  const m = validationMetrics([scored('<X_RAY> left', 1), scored('<CT_SCAN> no', null)]);
  t.same(accuracyByModality(m), { CT_SCAN: null, X_RAY: 1 });
  t.equal(JSON.stringify(accuracyByModality(m)), '{"CT_SCAN":null,"X_RAY":1}');
});
