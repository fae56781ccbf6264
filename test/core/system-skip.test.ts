// A skip for a missing system package: a skip with its reason on a user's machine, a failure under
// CI=true, and no failure when the package was left out of the build on purpose.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const script = join(import.meta.dirname, '../fixtures/system-skip/needs-package.ts');

function run(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, CI: '', ...env },
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

t.test("on a user's machine the test is skipped with its reason", async (t) => {
  const r = run({});
  t.equal(r.code, 0, r.out);
  t.match(r.out, /# SKIP libexample is not installed/);
});

t.test('under CI=true the same skip fails', async (t) => {
  const r = run({ CI: 'true' });
  t.not(r.code, 0, 'exit status');
  t.match(r.out, /not ok .*libexample is not installed: CI installs the system packages/);
});

t.test('a package left out of the build on purpose is not a failure under CI', async (t) => {
  const r = run({ CI: 'true', DELIBERATE: '1' });
  t.equal(r.code, 0, r.out);
});
