// Reading a candidate's prediction before it is judged: the reasoning is removed (the method judges
// only what follows </think> or </thinking>).

const CLOSING = /<\/think(?:ing)?>/gi;
const OPENING = /<think(?:ing)?>/i;

/**
 * The prediction without its reasoning: the text after the last closing think tag; when a think
 * block was opened but never closed (generation cut off while reasoning), only the text before it.
 */
export function stripReasoning(text: string): string {
  let end = -1;
  for (const m of text.matchAll(CLOSING)) end = m.index + m[0].length;
  if (end >= 0) return text.slice(end).trim();
  const open = OPENING.exec(text);
  return (open ? text.slice(0, open.index) : text).trim();
}
