// Reading a candidate's prediction before it is judged: the reasoning is removed (the method judges
// only what follows </think> or </thinking>).

const CLOSING = /<\/think(?:ing)?>/gi;

/**
 * The prediction without its reasoning: the text after the last closing think tag; without one (no
 * reasoning, or generation cut off while reasoning) the whole text, as the reference's evaluation judges it.
 */
export function stripReasoning(text: string): string {
  let end = -1;
  for (const m of text.matchAll(CLOSING)) end = m.index + m[0].length;
  return (end >= 0 ? text.slice(end) : text).trim();
}
