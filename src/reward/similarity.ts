// Deterministic stand-ins for the model-based components when none is configured: exact match of
// normalised text for the judge, and cosine similarity of character trigram counts for the
// embedding model. They are weaker than the real components; the reward warns once when used.
import { comparable } from './normalize.js';

function trigrams(text: string): Map<string, number> {
  const s = ` ${comparable(text)} `;
  const m = new Map<string, number>();
  const chars = [...s];
  for (let i = 0; i + 3 <= chars.length; i++) {
    const g = chars.slice(i, i + 3).join('');
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

/** Cosine similarity of character-trigram count vectors, in [0, 1]. */
export function trigramCosine(a: string, b: string): number {
  const x = trigrams(a);
  const y = trigrams(b);
  let dot = 0;
  for (const [g, n] of x) dot += n * (y.get(g) ?? 0);
  const norm = (m: Map<string, number>) => Math.sqrt([...m.values()].reduce((s, n) => s + n * n, 0));
  const d = norm(x) * norm(y);
  return d === 0 ? 0 : dot / d;
}
