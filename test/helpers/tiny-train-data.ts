// The four medical questions the trainer tests train on, with their tagged reference answers.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const rows = [
  ['A chest X-ray shows a pleural line with no lung markings beyond it.', '<X_RAY> pneumothorax'],
  ['A head CT shows a biconvex hyperdense collection.', '<CT_SCAN> epidural hematoma'],
  ['A brain MRI shows periventricular ovoid lesions.', '<MRI_SCAN> multiple sclerosis'],
  ['A blood smear shows Auer rods.', '<MICROSCOPY> acute myeloid leukemia'],
];

/** Writes DIR/train.jsonl (problem, solution) with those four rows. */
export function writeTinyTrainData(dir: string): void {
  writeFileSync(
    join(dir, 'train.jsonl'),
    `${rows.map(([p, s]) => JSON.stringify({ problem: p, solution: s })).join('\n')}\n`,
  );
}
