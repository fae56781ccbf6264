// Incremental detokenization for streaming: token ids go in one at a time, text deltas come out.
//
// Decoding each token on its own is wrong for byte-level BPE (Qwen3): one CJK character or emoji is
// often spread over two or three tokens, and a lone piece decodes to U+FFFD. Decoding everything
// again per token is right but quadratic. This keeps a small window instead (the offsets scheme of
// Hugging Face text-generation-inference and vLLM, written here from that description): the text of
// the window up to `readOffset` was already emitted; a token's delta is what decoding the whole
// window adds beyond that, and it is held back while it ends in U+FFFD (an incomplete UTF-8
// sequence). The window starts one emitted chunk earlier (`prefixOffset`) so decoders that treat the
// first token specially (SentencePiece's leading space) see the same context they would in a full
// decode. Every emitted boundary lies after a complete character, so the concatenated deltas equal
// decode(all ids) with the same options.
import type { TextTokenizer } from './types.js';

export interface DetokenizerOptions {
  /** Drop special tokens (<|im_end|>, ...) from the text, as decode(ids, { skipSpecialTokens }) does. */
  skipSpecialTokens?: boolean;
}

const REPLACEMENT_CHARACTER = '\uFFFD';

export class IncrementalDetokenizer {
  private readonly tokenIds: number[] = [];
  /** Start of the decode window: one emitted chunk before readOffset, for context. */
  private prefixOffset = 0;
  /** Tokens before this index have had their text emitted. */
  private readOffset = 0;
  private emitted = '';

  constructor(
    private readonly tokenizer: Pick<TextTokenizer, 'decode'>,
    private readonly options: DetokenizerOptions = {},
  ) {}

  /** Adds one token; returns the text it completes ('' while a multi-byte character is unfinished). */
  push(tokenId: number): string {
    this.tokenIds.push(tokenId);
    return this.advance(false);
  }

  /**
   * Returns whatever is still held back (an unfinished character at the very end decodes to U+FFFD,
   * exactly as decode() of all ids would render it). Call once when the sequence has ended.
   */
  flush(): string {
    return this.advance(true);
  }

  /** All text emitted so far (the concatenation of the returned deltas). */
  get text(): string {
    return this.emitted;
  }

  /** All token ids pushed so far. */
  get ids(): readonly number[] {
    return this.tokenIds;
  }

  private advance(final: boolean): string {
    if (this.readOffset === this.tokenIds.length) return '';
    const decodeOptions = { skipSpecialTokens: this.options.skipSpecialTokens ?? false };
    const known = this.tokenizer.decode(this.tokenIds.slice(this.prefixOffset, this.readOffset), decodeOptions);
    const full = this.tokenizer.decode(this.tokenIds.slice(this.prefixOffset), decodeOptions);
    // Nothing new (a skipped special token) or an unfinished character: wait for more tokens, so
    // the window keeps them and they are decoded together with their continuation.
    if (!final && (full.length <= known.length || full.endsWith(REPLACEMENT_CHARACTER))) return '';
    const delta = full.slice(known.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.tokenIds.length;
    this.emitted += delta;
    return delta;
  }
}
