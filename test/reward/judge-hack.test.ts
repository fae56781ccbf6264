// The judge-hacking detector against two committed lists: real clinical answers that must pass
// (words such as "return", "correct", "output", "system" or "prior" in ordinary use) and attacks
// that address the grader and must be caught. Both lists live in one fixture so a new false
// positive or a new attack is added next to the others.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { judgeHackReason } from '../../src/reward/judge-accuracy.js';

const cases = JSON.parse(
  readFileSync(join(import.meta.dirname, '../fixtures/reward/judge-hack-cases.json'), 'utf8'),
) as {
  clinical: string[];
  attacks: string[];
};

t.test('ordinary clinical answers are never flagged', async (t) => {
  t.ok(cases.clinical.length >= 50, `at least 50 clinical answers (${cases.clinical.length})`);
  for (const a of cases.clinical) t.equal(judgeHackReason(a), null, `clinical: ${a}`);
});

t.test('answers that address the grader are flagged with the phrase that gave them away', async (t) => {
  t.ok(cases.attacks.length >= 20, `at least 20 attacks (${cases.attacks.length})`);
  for (const a of cases.attacks) t.match(judgeHackReason(a), /^answer addresses the grader \('.+'\)$/, `attack: ${a}`);
});
