// Lists the C++ sources of the addon for binding.gyp (gyp has no globbing): every .cc under native/ but
// native/tests (standalone programs with their own main, built by scripts/build-*.sh).
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..');
const out = [];
(function walk(dir) {
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) {
      if (rel !== 'native/tests') walk(rel);
    } else if (e.name.endsWith('.cc')) out.push(rel);
  }
})('native');
console.log(out.sort().join(' '));
