// Reading a candidate's prediction before it is judged: the reasoning is removed (the method judges
// only what follows </think> or </thinking>), and a multiple-choice answer that is just an option
// letter (or the letter with that option's own text) is recognised so it can be scored exactly.

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

function normalise(s: string): string {
  return s.trim().replace(/\.+$/, '').replace(/\s+/g, ' ').toLowerCase();
}

/**
 * The option a prediction names by its letter, or null when it does not do so unambiguously:
 * "B", "(B)", "B.", "Answer: B", "<answer>B</answer>", or "B. <option B's text>". A letter followed
 * by other text is left to the judge (it may contradict itself). Letters are upper case only, so
 * that the article "a" is never read as option A.
 */
export function namedOption(prediction: string, choices: string[]): number | null {
  const tagged = /<answer>([\s\S]*?)<\/answer>/i.exec(prediction);
  const answer = (tagged ? tagged[1] : prediction).trim().replace(/^(?:the\s+)?(?:correct\s+)?(?:answer|option)\s*(?:is)?\s*[:-]?\s*/i, '');
  const m = /^\(?([A-Z])\)?(?:[.:)]\s*(.*))?$/s.exec(answer.trim());
  if (!m) return null;
  const index = m[1].charCodeAt(0) - 65;
  if (index >= choices.length) return null;
  const rest = m[2] === undefined ? '' : normalise(m[2]);
  if (rest !== '' && rest !== normalise(choices[index])) return null;
  return index;
}
