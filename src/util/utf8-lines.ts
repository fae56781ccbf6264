// Lines of a byte buffer, split on their end bytes before decoding, so text that is not UTF-8 is named by
// its line instead of failing the whole input or silently turning into U+FFFD characters (what a
// decoding stream or readline does).

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** One line: its 1-based number and its text, or null when its bytes are not UTF-8. */
export interface Utf8Line {
  line: number;
  text: string | null;
}

/**
 * Lines end at LF (a CR before it is dropped); in input without any LF, at CR (old Mac text, which Python's text
 * files also split). A CR elsewhere stays in its line: JSON may hold one as whitespace between tokens, and line
 * numbers then match grep's and sed's. A final empty line is yielded too.
 */
export function* utf8Lines(bytes: Uint8Array): Generator<Utf8Line> {
  const eol = bytes.indexOf(0x0a) < 0 && bytes.indexOf(0x0d) >= 0 ? 0x0d : 0x0a;
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(eol, start);
    if (end < 0) end = bytes.length;
    const chunk = bytes.subarray(start, eol === 0x0a && end > start && bytes[end - 1] === 0x0d ? end - 1 : end);
    start = end + 1;
    let text: string | null;
    try {
      text = strictUtf8.decode(chunk);
    } catch {
      text = null;
    }
    yield { line, text };
  }
}

/** The whole of `bytes` as UTF-8, or null when it is not. */
export function strictUtf8Text(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}
