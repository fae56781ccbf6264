// Data layouts besides single files: a directory of Parquet shards, a `datasets` save_to_disk
// directory (Arrow, also a DatasetDict split), and a hub dataset `org/name@split` found offline in
// the hub cache; all in MediX-R1's own column layout (problem, solution, image), read unrenamed.
import t, { type Test } from 'tap';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadTrainingConfig } from '../../src/config/index.js';
import {
  DataError,
  loadDatasetFromConfig,
  loadRlDataset,
  resolveDataFiles,
  type LoadDatasetOptions,
} from '../../src/data/index.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';

const layouts = join(import.meta.dirname, '../fixtures/data/layouts');
const shardDir = join(layouts, 'shards');
const shards = ['train-00000-of-00002.parquet', 'train-00001-of-00002.parquet'].map((f) => join(shardDir, f));
const questions = ['Which bone forms the heel?', 'Which vitamin deficiency causes scurvy?', 'Which organ is imaged?'];
const tmp = () => mkdtempSync(join(tmpdir(), 'medix-sources-'));

/** MediX-R1's column names, as the config defaults give them (image_key 'images', with 'image' tried too). */
const medix: LoadDatasetOptions = {
  promptKey: 'problem',
  answerKey: 'solution',
  imageKey: 'images',
  imageKeyAliases: ['image'],
  onBadRow: 'stop',
  resize: { factor: 32, minPixels: 1024, maxPixels: 1 << 20 },
};

async function expectMedixRows(t: Test, files: string[]) {
  const { samples } = await loadRlDataset(files, medix);
  t.same(
    samples.map((s) => s.question),
    questions,
    'every row, in order',
  );
  t.same(
    samples.map((s) => s.images.length),
    [1, 0, 0],
    "the 'image' column is read as the images",
  );
  t.same(samples[0].imageSizes, [{ width: 64, height: 48 }]);
}

t.test('a directory of Parquet shards: every shard, in name order', async (t) => {
  t.same(resolveDataFiles(shardDir), shards);
  await expectMedixRows(t, resolveDataFiles(shardDir));
  const empty = tmp();
  t.throws(
    () => resolveDataFiles(empty),
    new DataError(`${empty}: a directory with no .parquet files and no save_to_disk state.json`, empty),
  );
});

t.test('save_to_disk: a Dataset directory (Arrow) and a DatasetDict split', async (t) => {
  const saved = join(layouts, 'saved');
  t.same(resolveDataFiles(saved), [join(saved, 'data-00000-of-00001.arrow')]);
  await expectMedixRows(t, resolveDataFiles(saved));
  const { samples } = await loadRlDataset(resolveDataFiles(saved), medix);
  const png = await sharp(
    samples[0].images[0] && 'bytes' in samples[0].images[0] ? samples[0].images[0].bytes : Buffer.alloc(0),
  ).metadata();
  t.same([png.format, png.width, png.height], ['png', 64, 48], 'the image bytes come through whole');
  t.equal(samples[1].id, `${join(saved, 'data-00000-of-00001.arrow')}: row 2`, 'rows are named by file and row');
  const dict = tmp();
  cpSync(saved, join(dict, 'train'), { recursive: true });
  writeFileSync(join(dict, 'dataset_dict.json'), JSON.stringify({ splits: ['train'] }));
  t.same(resolveDataFiles(`${dict}@train`), [join(dict, 'train', 'data-00000-of-00001.arrow')]);
  t.throws(() => resolveDataFiles(dict), /a saved DatasetDict; name a split as .*@SPLIT \(one of train\)/);
});

/** A hub cache as huggingface_hub leaves it: refs/main names the snapshot, whose files link to blobs. */
function hubCache(): string {
  const home = tmp();
  const repo = join(home, 'hub', 'datasets--medix--tiny');
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  mkdirSync(join(repo, 'refs'));
  writeFileSync(join(repo, 'refs', 'main'), 'c0ffee\n');
  const snap = join(repo, 'snapshots', 'c0ffee', 'data');
  mkdirSync(snap, { recursive: true });
  shards.forEach((f, i) => {
    writeFileSync(join(repo, 'blobs', `b${i}`), readFileSync(f));
    symlinkSync(join('..', '..', '..', 'blobs', `b${i}`), join(snap, `train-0000${i}-of-00002.parquet`));
  });
  cpSync(shards[1], join(snap, 'test-00000-of-00001.parquet'));
  mkdirSync(join(repo, 'snapshots', 'old', 'data'), { recursive: true }); // an older snapshot, not the one refs/main names
  cpSync(shards[1], join(repo, 'snapshots', 'old', 'data', 'train-00000-of-00001.parquet'));
  return home;
}

t.test('org/name@split from the hub cache (HF_HOME), offline', async (t) => {
  const home = hubCache();
  const env = { HF_HOME: home };
  const snap = join(home, 'hub', 'datasets--medix--tiny', 'snapshots', 'c0ffee', 'data');
  t.same(resolveDataFiles('medix/tiny@train', env), [
    join(snap, 'train-00000-of-00002.parquet'),
    join(snap, 'train-00001-of-00002.parquet'),
  ]);
  t.same(resolveDataFiles('medix/tiny@test', env), [join(snap, 'test-00000-of-00001.parquet')]);
  await expectMedixRows(t, resolveDataFiles('medix/tiny@train', env));
  t.same(
    resolveDataFiles('medix/tiny@train', { HF_HUB_CACHE: join(home, 'hub') }).length,
    2,
    'HF_HUB_CACHE names the hub folder itself',
  );
  t.throws(
    () => resolveDataFiles('medix/other@train', env),
    /medix\/other@train: not in the Hugging Face cache \(no .*datasets--medix--other\/refs\/main\)/,
  );
  t.throws(() => resolveDataFiles('medix/tiny@validation', env), /no data files for split 'validation'/);
  t.throws(() => resolveDataFiles('no/such/file.jsonl'), /no such file or directory/);
});

t.test('the config takes every layout as train_files; MediX-R1 columns need no renaming', async (t) => {
  const home = hubCache();
  const saved = process.env.HF_HOME;
  process.env.HF_HOME = home;
  t.teardown(() => {
    if (saved === undefined) delete process.env.HF_HOME;
    else process.env.HF_HOME = saved;
  });
  const dir = tmp();
  const tok = await loadTokenizer();
  for (const spec of ['medix/tiny@train', shardDir, join(layouts, 'saved')]) {
    const file = join(dir, 'c.yaml');
    writeFileSync(
      file,
      `data:\n  train_files: ${spec}\nsft:\n  train_files: ${spec}\n` +
        'worker:\n  actor:\n    model:\n      model_path: /models/x\n',
    );
    const cfg = loadTrainingConfig(file, []);
    t.equal(cfg.data.train_files, spec, `${spec}: kept as written (a hub id is not made a path)`);
    t.equal(cfg.sft.train_files, spec, `${spec}: the same in sft.train_files`);
    const warnings: string[] = [];
    const { samples, stats } = await loadDatasetFromConfig(cfg.data, 'train', tok, { warn: (m) => warnings.push(m) });
    t.same(
      samples.map((s) => s.question),
      questions.slice(1),
      `${spec}: the text rows load under the default keys`,
    );
    // The text-only tokenizer refuses the image row: proof that its 'image' column was seen as images.
    t.same([stats.badRows, warnings.length], [1, 1]);
    t.match(warnings[0], /row 1: .*has no image support/);
  }
});
