// The visual quickstart's synthetic data set: the same seed writes the same bytes (another seed other
// ones); every row of a kind asks the same question, so only its image tells the answer; answers are
// balanced within each kind, tagged with the kind's modality, and the held-out images are not the
// train ones.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageAccuracyChance, VISION_KINDS, writeVisionDataset } from '../../src/data/synthetic-vision.js';

const options = { trainPerKind: 4, heldoutPerKind: 2, size: 64 };

function contents(dir: string): Map<string, Buffer> {
  const files = ['train.jsonl', 'heldout.jsonl', ...readdirSync(join(dir, 'images')).map((f) => join('images', f))];
  return new Map(files.map((f) => [f, readFileSync(join(dir, f))]));
}

t.test('the same seed writes the same bytes; another seed other images', async (t) => {
  const [a, b, c] = [t.testdir(), `${t.testdir()}-b`, `${t.testdir()}-c`];
  await writeVisionDataset(a, { seed: 3, ...options });
  await writeVisionDataset(b, { seed: 3, ...options });
  await writeVisionDataset(c, { seed: 4, ...options });
  const [ca, cb, cc] = [contents(a), contents(b), contents(c)];
  t.equal(ca.size, 2 + 3 * (4 + 2), 'two files and 18 images');
  for (const [f, bytes] of ca) t.ok(bytes.equals(cb.get(f)!), `${f}: same bytes`);
  const changed = [...ca].filter(([f, bytes]) => f.startsWith('images') && !bytes.equals(cc.get(f)!)).length;
  t.equal(changed, 18, 'seed 4 draws every image anew');
});

t.test('questions need the image: one question per kind, balanced tagged answers, held-out images apart', async (t) => {
  const dir = t.testdir();
  const files = await writeVisionDataset(dir, { seed: 1, ...options });
  const read = (f: string) =>
    readFileSync(f, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { problem: string; solution: string; images: string[] });
  const [train, heldout] = [read(files.train), read(files.heldout)];
  t.equal(train.length, 12);
  t.equal(heldout.length, 6);
  for (const kind of VISION_KINDS) {
    const rows = train.filter((r) => r.solution.startsWith(kind.tag));
    t.same(new Set(rows.map((r) => r.problem)), new Set([kind.question]), `${kind.name}: one question text`);
    for (const answer of kind.answers)
      t.equal(rows.filter((r) => r.solution === `${kind.tag} ${answer}`).length, 2, `${kind.name}: '${answer}' twice`);
  }
  const trainImages = new Set(train.map((r) => readFileSync(join(dir, r.images[0])).toString('base64')));
  t.notOk(
    heldout.some((r) => trainImages.has(readFileSync(join(dir, r.images[0])).toString('base64'))),
    'no held-out image is a train image',
  );
  t.equal(imageAccuracyChance(), 0.5, 'two answers per kind: chance is 1/2');
});
