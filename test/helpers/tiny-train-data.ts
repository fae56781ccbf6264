// The four medical questions the trainer tests train on, with their tagged reference answers.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const rows = [
  ['A chest X-ray shows a pleural line with no lung markings beyond it.', '<X_RAY> pneumothorax'],
  ['A head CT shows a biconvex hyperdense collection.', '<CT_SCAN> epidural hematoma'],
  ['A brain MRI shows periventricular ovoid lesions.', '<MRI_SCAN> multiple sclerosis'],
  ['A blood smear shows Auer rods.', '<MICROSCOPY> acute myeloid leukemia'],
];

/** The tiny Qwen3 these trainer tests train (worker.actor.model.init), with the real Qwen3 tokenizer. */
export const tinyModelInit = {
  hidden_size: 16,
  intermediate_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 8,
  seed: 3,
};

/** Writes DIR/train.jsonl (problem, solution) with those four rows. */
export function writeTinyTrainData(dir: string): void {
  writeFileSync(
    join(dir, 'train.jsonl'),
    `${rows.map(([p, s]) => JSON.stringify({ problem: p, solution: s })).join('\n')}\n`,
  );
}
