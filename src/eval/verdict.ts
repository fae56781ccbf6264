// Reading the judge's JSON verdicts and combining the rounds: a majority vote for 0/1 tasks, the
// mean for 0-5 tasks (both as the method does). A reply that holds no valid verdict is reported as
// such, never read as a 0.
import type { TaskSpec } from './tasks.js';
import { stripReasoning } from './answer.js';

export type VerdictParse = { ok: true; score: number } | { ok: false; problem: string };

function candidates(text: string): string[] {
  const unfenced = text.replace(/```(?:json)?/gi, '').trim();
  const objects = [...unfenced.matchAll(/\{[^{}]*\}/g)].map((m) => m[0]).reverse();
  return [unfenced, ...objects];
}

/** The verdict in a judge reply (its reasoning, code fences and surrounding prose ignored). */
export function parseVerdict(reply: string, scoring: TaskSpec['scoring']): VerdictParse {
  const text = stripReasoning(reply);
  let score: unknown;
  let found = false;
  for (const c of candidates(text)) {
    try {
      const v: unknown = JSON.parse(c);
      if (typeof v === 'object' && v !== null && 'score' in v) {
        score = (v as { score: unknown }).score;
        found = true;
        break;
      }
    } catch {
      // not JSON: try the next candidate
    }
  }
  if (!found) return { ok: false, problem: `no JSON object with a "score" in ${JSON.stringify(text.slice(0, 200))}` };
  const n = typeof score === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(score) ? Number(score) : score;
  if (typeof n !== 'number' || !Number.isFinite(n))
    return { ok: false, problem: `score ${JSON.stringify(score)} is not a number` };
  if (scoring === 'binary' && n !== 0 && n !== 1) return { ok: false, problem: `score ${n} is not 0 or 1` };
  if (scoring === 'rubric' && (n < 0 || n > 5)) return { ok: false, problem: `score ${n} is outside 0-5` };
  return { ok: true, score: n };
}

/**
 * The sample's score in [0, 1] from its rounds: binary, 1 when more than half the rounds say 1 (a
 * tie, possible only with an even number of rounds, is 0); rubric, the mean score divided by 5.
 */
export function combineRounds(scores: number[], scoring: TaskSpec['scoring']): number {
  if (scores.length === 0) throw new Error('combineRounds: no rounds');
  if (scoring === 'binary') return scores.filter((s) => s === 1).length * 2 > scores.length ? 1 : 0;
  return scores.reduce((a, b) => a + b, 0) / scores.length / 5;
}
