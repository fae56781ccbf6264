// Phase 1, generate: every benchmark item not yet answered is sent to the candidate (temperature 0
// by default, bounded concurrency) and its output appended to generations.jsonl. Items whose last
// record is an error are tried again; finished ones are skipped.
import type { BenchmarkItem } from './benchmark-data.js';
import type { ChatModel } from './chat.js';
import { imageDataUrls } from './images.js';
import { forEachLimited } from './pool.js';
import { candidateMessages } from './prompt.js';
import type { GenerationRecord } from './records.js';
import type { ResultsFile } from './results-store.js';

export interface GenerateOptions {
  temperature: number;
  maxTokens: number;
  concurrency: number;
  systemPrompt?: string;
  onRecord?: (record: GenerationRecord) => void;
}

export interface PhaseSummary {
  /** Items already finished before this run (skipped). */
  skipped: number;
  ok: number;
  errors: number;
}

export async function runGenerate(
  items: readonly BenchmarkItem[],
  model: ChatModel,
  out: ResultsFile<GenerationRecord>,
  o: GenerateOptions,
): Promise<PhaseSummary> {
  const todo = items.filter((it) => !out.done(it.key));
  const summary: PhaseSummary = { skipped: items.length - todo.length, ok: 0, errors: 0 };
  await forEachLimited(todo, o.concurrency, async (it) => {
    const t0 = performance.now();
    const base = {
      key: it.key,
      task: it.task,
      id: it.id,
      scoring: it.scoring,
      prompt: it.prompt,
      reference: it.reference,
      ...(it.choices ? { choices: it.choices, answer_index: it.answerIndex } : {}),
    };
    let record: GenerationRecord;
    let images = 0;
    try {
      const urls = await imageDataUrls(it.image, it.imageBaseDir, `${it.where}: image`);
      images = urls.length;
      const reply = await model.chat({
        messages: candidateMessages(it.prompt, urls, o.systemPrompt),
        temperature: o.temperature,
        maxTokens: o.maxTokens,
      });
      record = {
        ...base,
        status: 'ok',
        images,
        output: reply.text,
        finish_reason: reply.finishReason,
        seconds: (performance.now() - t0) / 1000,
      };
      summary.ok++;
    } catch (e) {
      // The candidate's errors (an in-process engine that cannot decode an image, a server's refusal) name the row.
      const message = (e as Error).message;
      record = {
        ...base,
        status: 'error',
        images,
        error: message.startsWith(`${it.where}:`) ? message : `${it.where}: ${message}`,
        seconds: (performance.now() - t0) / 1000,
      };
      summary.errors++;
    }
    out.append(record);
    o.onRecord?.(record);
  });
  out.sync();
  return summary;
}
