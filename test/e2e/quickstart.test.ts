// A shorter quickstart (`npm run train`): the whole product path on the bundled data, a tiny model
// and the real Qwen3 tokenizer. SFT teaches the answer format; DAPO with the composite reward must
// then raise the mean reward on the held-out questions above what SFT alone reached.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrainingConfig } from '../../src/config/index.js';
import { Trainer, configDir } from '../../src/train/trainer.js';

const file = join(import.meta.dirname, '../../examples/quickstart.yaml');

t.test('held-out reward after RL beats SFT alone', async (t) => {
  const run = mkdtempSync(join(tmpdir(), 'medix-quickstart-'));
  const cfg = loadTrainingConfig(file, [
    `trainer.save_checkpoint_path=${run}`,
    'trainer.max_steps=8',
    'trainer.val_freq=-1',
    'trainer.save_freq=-1',
  ]);
  const trainer = await Trainer.create(cfg, { baseDir: configDir(file), log: () => {} });
  const s = await trainer.run();
  t.ok(s.heldout_reward_after_sft !== null && s.heldout_reward_after_rl !== null, 'both measured');
  t.ok(
    s.heldout_reward_after_rl! > s.heldout_reward_after_sft!,
    `held-out reward: after SFT ${s.heldout_reward_after_sft}, after RL ${s.heldout_reward_after_rl}`,
  );
});
