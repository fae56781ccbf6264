// Lines of a byte buffer, split on the byte 0x0A before decoding, so text that is not UTF-8 is named by
// its line instead of failing the whole input or silently turning into U+FFFD characters (what a
// decoding stream or readline does).

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** One line: its 1-based number and its text, or null when its bytes are not UTF-8. */
export interface Utf8Line {
  line: number;
  text: string | null;
}

/** Lines end at LF, CRLF or a lone CR (as Python's text files read them); a final empty line is yielded too. */
export function* utf8Lines(bytes: Uint8Array): Generator<Utf8Line> {
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = start;
    while (end < bytes.length && bytes[end] !== 0x0a && bytes[end] !== 0x0d) end++;
    const chunk = bytes.subarray(start, end);
    start = end + (bytes[end] === 0x0d && bytes[end + 1] === 0x0a ? 2 : 1);
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
