// Training data loading: bad rows with file:line, policies, seeded order that resumes exactly.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PromptSampler, readJsonlDataset, shuffled } from '../../src/train/dataset.js';

t.test('data: bad rows named by file and line, skip or stop', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'medix-data-'));
  const f = join(dir, 'd.jsonl');
  writeFileSync(f, ['{"q": "What?", "a": "<X_RAY> x"}', '{"q": 3, "a": "y"}', 'not json', '', '{"q": "Q2", "a": "<CT_SCAN> z", "imgs": "one"}', '{"q": "Q3", "a": "<CT_SCAN> w", "imgs": []}'].join('\n'));
  const warnings: string[] = [];
  const o = { promptKey: 'q', answerKey: 'a', imageKey: 'imgs', onBadRow: 'skip' as const, warn: (m: string) => warnings.push(m) };
  const { rows, badRows } = readJsonlDataset(f, o);
  t.equal(rows.length, 2);
  t.equal(badRows, 3);
  t.match(warnings.join('\n'), /d\.jsonl:2: field 'q' must be a non-empty string/);
  t.match(warnings.join('\n'), /d\.jsonl:3: not valid JSON/);
  t.match(warnings.join('\n'), /d\.jsonl:5: field 'imgs' must be a list/);
  t.throws(() => readJsonlDataset(f, { ...o, onBadRow: 'stop' }), /d\.jsonl:2: field 'q'/);
  writeFileSync(f, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
  t.throws(() => readJsonlDataset(f, o), /cannot read as UTF-8/);
});

t.test('order: seeded shuffles per epoch, resumable at any position', async (t) => {
  const rows = Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, question: `q${i}`, groundTruth: 'a', images: [] }));
  t.same(shuffled(rows, 5), shuffled(rows, 5), 'same seed, same order');
  t.notSame(shuffled(rows, 5).map((r) => r.id), shuffled(rows, 6).map((r) => r.id));
  const straight = new PromptSampler(rows, 3, true);
  const all = [...straight.next(7), ...straight.next(7), ...straight.next(7)].map((r) => r.id);
  const first = new PromptSampler(rows, 3, true);
  const a = first.next(7).map((r) => r.id);
  const resumed = new PromptSampler(rows, 3, true, first.position());
  const b = [...resumed.next(7), ...resumed.next(7)].map((r) => r.id);
  t.same([...a, ...b], all, 'a sampler rebuilt from position() continues identically');
  t.same(new Set(all.slice(0, 10)), new Set(rows.map((r) => r.id)), 'each epoch visits every row once');
});
