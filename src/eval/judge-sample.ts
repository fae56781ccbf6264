// Judging one prediction: the method's three rounds in one conversation (the judge sees its earlier
// verdicts and is asked to re-evaluate), combined by vote or mean. A reply without a valid verdict
// is answered with a correction and asked again, up to a limit; after that the sample is an error,
// which the score reports and the next run retries; it is never counted as 0. As in the reference,
// every sample goes to the judge (a bare option letter too: the judge's prompt says how to read it),
// and the judge answers without thinking, so its budget of tokens goes to the verdict.
import type { ChatMessage } from '../tokenizer/types.js';
import { stripReasoning } from './answer.js';
import type { ChatModel } from './chat.js';
import { correctionMessage, judgeMessages, REEVALUATE } from './judge-prompt.js';
import type { GenerationRecord, JudgeRound, JudgmentRecord } from './records.js';
import { combineRounds, parseVerdict } from './verdict.js';

export interface JudgeOptions {
  /** Verdicts asked per sample (the method: 3). */
  rounds: number;
  /** Replies tried per round before the sample is recorded as an error. */
  attemptsPerRound: number;
  maxTokens: number;
}

export async function judgeSample(judge: ChatModel, g: GenerationRecord, o: JudgeOptions): Promise<JudgmentRecord> {
  const prediction = stripReasoning(g.output ?? '');
  const base = { key: g.key, task: g.task, id: g.id, scoring: g.scoring, prediction };
  const messages: ChatMessage[] = judgeMessages({
    scoring: g.scoring,
    question: g.prompt,
    reference: g.reference,
    prediction,
    choices: g.choices,
    answerIndex: g.answer_index,
  });
  const rounds: JudgeRound[] = [];
  const scores: number[] = [];
  try {
    for (let r = 0; r < o.rounds; r++) {
      if (r > 0) messages.push({ role: 'user', content: REEVALUATE });
      for (let attempt = 1; ; attempt++) {
        const reply = await judge.chat({ messages, temperature: 0, maxTokens: o.maxTokens, thinking: false });
        messages.push({ role: 'assistant', content: reply.text });
        const verdict = parseVerdict(reply.text, g.scoring);
        if (verdict.ok) {
          rounds.push({ reply: reply.text, score: verdict.score });
          scores.push(verdict.score);
          break;
        }
        rounds.push({ reply: reply.text });
        if (attempt >= o.attemptsPerRound)
          return {
            ...base,
            status: 'error',
            rounds,
            error: `round ${r + 1}: no valid verdict in ${attempt} replies (${verdict.problem})`,
          };
        messages.push({ role: 'user', content: correctionMessage(g.scoring, verdict.problem) });
      }
    }
  } catch (e) {
    return { ...base, status: 'error', rounds, error: `judge request failed: ${(e as Error).message}` };
  }
  return { ...base, status: 'ok', score: combineRounds(scores, g.scoring), rounds };
}
