// The judge's persistent cache: entries survive a reopen, torn or foreign lines are skipped and
// counted, and an append after a torn line starts on a fresh line so the new entry is readable.
import t from 'tap';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlCache, cacheKey } from '../../src/judge/cache.js';

const isVerdict = (v: unknown): v is 0 | 1 => v === 0 || v === 1;

t.test('keys depend on every part', async (t) => {
  t.equal(cacheKey(['m', 'v1', 'a', 'b']), cacheKey(['m', 'v1', 'a', 'b']));
  t.not(cacheKey(['m', 'v1', 'a', 'b']), cacheKey(['m', 'v2', 'a', 'b']));
  t.not(cacheKey(['m', 'v1', 'ab', '']), cacheKey(['m', 'v1', 'a', 'b']), 'no ambiguity from concatenation');
});

t.test('persists across reopen; torn lines are skipped and do not spoil later appends', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'medix-cache-')), 'c.jsonl');
  const a = new JsonlCache(file, isVerdict);
  a.set('k1', 1);
  a.set('k2', 0);
  await a.flush();
  t.equal(new JsonlCache(file, isVerdict).get('k1'), 1);
  appendFileSync(file, '{"key":"k3","val'); // a crash in the middle of a write
  const b = new JsonlCache(file, isVerdict);
  t.equal(b.unreadableLines, 1);
  t.equal(b.size, 2);
  b.set('k4', 1);
  await b.flush();
  const c = new JsonlCache(file, isVerdict);
  t.equal(c.get('k4'), 1, 'the entry after the torn line is readable');
  t.equal(c.get('k3'), undefined);
  t.equal(c.unreadableLines, 1);
  t.throws(() => c.set('k5', 7 as 0), /wrong shape/);
});

t.test('lines with values of another shape are not trusted', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'medix-cache-')), 'c.jsonl');
  writeFileSync(file, '{"key":"a","value":1}\n{"key":"b","value":"YES"}\nnot json\n');
  const c = new JsonlCache(file, isVerdict);
  t.equal(c.size, 1);
  t.equal(c.unreadableLines, 2);
});

t.test('a cache without a file stays in memory; an unwritable file is reported on flush', async (t) => {
  const m = new JsonlCache(undefined, isVerdict);
  m.set('x', 0);
  t.equal(m.get('x'), 0);
  await m.flush();
  const dir = mkdtempSync(join(tmpdir(), 'medix-cache-'));
  const bad = new JsonlCache(join(dir, 'missing-dir', 'c.jsonl'), isVerdict);
  bad.set('x', 1);
  t.equal(bad.get('x'), 1, 'still usable in memory');
  await t.rejects(bad.flush(), /cache .*c\.jsonl: cannot append/);
});

t.test('a cache file that cannot be read (a folder) is named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'medix-cache-'));
  t.throws(() => new JsonlCache(dir, isVerdict), new RegExp(`cache file ${dir}: cannot read \\(EISDIR\\)`));
});
