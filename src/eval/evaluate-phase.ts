// Phase 2, evaluate: every successful generation without a successful judgment is judged and the
// result appended to judgments.jsonl. Judge errors are retried by the next run.
import type { ChatModel } from './chat.js';
import { judgeSample, type JudgeOptions } from './judge-sample.js';
import type { PhaseSummary } from './generate-phase.js';
import { forEachLimited } from './pool.js';
import type { GenerationRecord, JudgmentRecord } from './records.js';
import type { ResultsFile } from './results-store.js';

export interface EvaluateOptions extends JudgeOptions {
  concurrency: number;
  /** Judge only these tasks (default: every task in generations.jsonl). */
  tasks?: ReadonlySet<string>;
  onRecord?: (record: JudgmentRecord) => void;
}

export async function runEvaluate(
  generations: ResultsFile<GenerationRecord>,
  judgments: ResultsFile<JudgmentRecord>,
  judge: ChatModel,
  o: EvaluateOptions,
): Promise<PhaseSummary & { notGenerated: number }> {
  const all = [...generations.records.values()].filter((g) => !o.tasks || o.tasks.has(g.task));
  const answered = all.filter((g) => g.status === 'ok');
  const todo = answered.filter((g) => !judgments.done(g.key));
  const summary = {
    skipped: answered.length - todo.length,
    ok: 0,
    errors: 0,
    notGenerated: all.length - answered.length,
  };
  await forEachLimited(todo, o.concurrency, async (g) => {
    const record = await judgeSample(judge, g, o);
    judgments.append(record);
    if (record.status === 'ok') summary.ok++;
    else summary.errors++;
    o.onRecord?.(record);
  });
  judgments.sync();
  return summary;
}
