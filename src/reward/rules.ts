// The rule-based components: format and modality. Both read the response after squeezeTags.
import { squeezeTags } from './normalize.js';

export interface FormatTags {
  think: string;
  answer: string;
}

export const DEFAULT_TAGS: FormatTags = { think: 'thinking', answer: 'answer' };

/**
 * 1 when, from the first <thinking> on, the response is exactly <thinking>…</thinking>, optional
 * whitespace, <answer>…</answer>; else 0. Stricter than the reference in one way, to resist
 * gaming: neither block may contain its own opening or closing tag (no nested or repeated blocks
 * smuggled inside a single match).
 */
export function formatScore(response: string, tags: FormatTags = DEFAULT_TAGS): number {
  const r = squeezeTags(response);
  const start = r.indexOf(`<${tags.think}>`);
  if (start < 0) return 0;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const [t, a] = [esc(tags.think), esc(tags.answer)];
  const body = (tag: string) => `((?:(?!<\\/?${tag}>)[\\s\\S])*)`;
  const re = new RegExp(`^<${t}>${body(t)}<\\/${t}>\\s*<${a}>${body(a)}<\\/${a}>$`);
  return re.test(r.slice(start).trim()) ? 1 : 0;
}

/** 1 when the text before the first <thinking> equals the ground truth's tag (case-insensitive). */
export function modalityScore(response: string, gtTag: string, tags: FormatTags = DEFAULT_TAGS): number {
  if (!gtTag) return 0;
  const r = squeezeTags(response);
  const start = r.indexOf(`<${tags.think}>`);
  const prefix = (start < 0 ? '' : r.slice(0, start)).trim();
  return prefix.toUpperCase() === gtTag.toUpperCase() ? 1 : 0;
}
