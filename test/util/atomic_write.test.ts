// atomicWriteFileSync: the target appears whole or not at all, and a failed write leaves no temporary
// file behind (a target that is a directory, or a folder that does not exist, is named in the error).
import t from 'tap';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atomicWriteFileSync } from '../../src/util/atomic-write.js';

t.test('writes whole; a failed rename leaves nothing behind and names the target', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'medix-atomic-'));
  atomicWriteFileSync(join(dir, 'a.json'), '{"x": 1}\n');
  atomicWriteFileSync(join(dir, 'a.json'), '{"x": 2}\n');
  t.equal(readFileSync(join(dir, 'a.json'), 'utf8'), '{"x": 2}\n', 'replaced whole');
  mkdirSync(join(dir, 'out'));
  t.throws(() => atomicWriteFileSync(join(dir, 'out'), 'data'), /cannot write .*out \(EISDIR\)/);
  t.same(readdirSync(dir).sort(), ['a.json', 'out'], 'no temporary file left');
  t.throws(
    () => atomicWriteFileSync(join(dir, 'missing', 'b.json'), 'data'),
    /cannot write .*missing\/b\.json \(ENOENT\)/,
  );
});
