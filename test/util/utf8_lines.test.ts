// Lines of bytes: split before decoding, so a line that is not UTF-8 is named by its number; LF, CRLF and a
// lone CR all end a line.
import t from 'tap';
import { utf8Lines } from '../../src/util/utf8-lines.js';

const lines = (b: Uint8Array) => [...utf8Lines(b)];

t.test('LF, CRLF and a lone CR end lines; each line keeps its number', async (t) => {
  t.same(lines(Buffer.from('a\nb\r\nc\rd')), [
    { line: 1, text: 'a' },
    { line: 2, text: 'b' },
    { line: 3, text: 'c' },
    { line: 4, text: 'd' },
  ]);
  t.same(
    lines(Buffer.from('a\n')),
    [
      { line: 1, text: 'a' },
      { line: 2, text: '' },
    ],
    'a final newline leaves an empty last line',
  );
  t.same(
    lines(Buffer.from('a\r\n\r\nb')).map((l) => l.text),
    ['a', '', 'b'],
    'an empty CRLF line counts',
  );
  t.same(lines(new Uint8Array(0)), [{ line: 1, text: '' }]);
});

t.test('a line that is not UTF-8 is null, its neighbours intact', async (t) => {
  const bytes = Buffer.concat([Buffer.from('ok\ncaf'), Buffer.from([0xe9]), Buffer.from('\nstill ok')]);
  t.same(lines(bytes), [
    { line: 1, text: 'ok' },
    { line: 2, text: null },
    { line: 3, text: 'still ok' },
  ]);
  t.same(
    lines(Buffer.from('\u00e9t\u00e9\n')).map((l) => l.text),
    ['\u00e9t\u00e9', ''],
    'multi-byte UTF-8 decodes',
  );
});
