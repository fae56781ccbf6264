// Lines of bytes: split before decoding, so a line that is not UTF-8 is named by its number; LF and CRLF end a
// line, and a lone CR only in text without LF.
import t from 'tap';
import { utf8Lines } from '../../src/util/utf8-lines.js';

const lines = (b: Uint8Array) => [...utf8Lines(b)];

t.test('LF and CRLF end lines; a lone CR only where no LF is (old Mac text); each line keeps its number', async (t) => {
  t.same(lines(Buffer.from('a\nb\r\nc')), [
    { line: 1, text: 'a' },
    { line: 2, text: 'b' },
    { line: 3, text: 'c' },
  ]);
  t.same(
    lines(Buffer.from('{"a": 1,\r"b": 2}\nx')).map((l) => l.text),
    ['{"a": 1,\r"b": 2}', 'x'],
    'a CR between JSON tokens stays in its line',
  );
  t.same(
    lines(Buffer.from('a\rb\r')).map((l) => l.text),
    ['a', 'b', ''],
    'CR-only text splits at CR',
  );
  t.same(
    lines(Buffer.from('a\n')),
    [
      { line: 1, text: 'a' },
      { line: 2, text: '' },
    ],
    'a final newline leaves an empty last line',
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
