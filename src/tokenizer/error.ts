// The one error type of the tokenizer module: its message names the file (and field) at fault.
export class TokenizerError extends Error {
  override name = 'TokenizerError';
}
