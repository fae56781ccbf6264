// The records the phases append (OUTPUT_DIR/generations.jsonl and judgments.jsonl). A generation
// record carries everything the judge needs (prompt, reference, options), so the evaluate phase
// runs from the output directory alone, without the data files.
import type { TaskSpec } from './tasks.js';
import type { ResultRecord } from './results-store.js';

export interface GenerationRecord extends ResultRecord {
  id: string;
  scoring: TaskSpec['scoring'];
  prompt: string;
  reference: string;
  choices?: string[];
  answer_index?: number;
  images: number;
  /** The model's full output, reasoning included. */
  output?: string;
  finish_reason?: string | null;
  seconds: number;
}

export interface JudgeRound {
  reply: string;
  /** The verdict read from the reply; absent when the reply held none (the round was then retried). */
  score?: number;
}

export interface JudgmentRecord extends ResultRecord {
  id: string;
  scoring: TaskSpec['scoring'];
  /** The sample's score in [0, 1] (binary: the vote; rubric: the mean / 5). */
  score?: number;
  /** The prediction as judged (reasoning removed). */
  prediction: string;
  /** Every judge reply in conversation order, malformed ones included. */
  rounds: JudgeRound[];
}

export const GENERATIONS_FILE = 'generations.jsonl';
export const JUDGMENTS_FILE = 'judgments.jsonl';
export const SCORES_FILE = 'scores.json';
export const SCORES_PAGE = 'scores.html';
