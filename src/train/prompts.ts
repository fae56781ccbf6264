// From a data row to model inputs: the question through the configured prompt template (Jinja,
// {{ content }} is the question), then the model's own chat template; and the SFT target response
// through its template. Rows whose prompt is longer than max_prompt_length are filtered and counted.
import { Template } from '@huggingface/jinja';
import type { TextTokenizer, ChatMessage } from '../tokenizer/types.js';
import { parseGroundTruth } from '../reward/normalize.js';
import type { DataRow } from './dataset.js';

export interface PromptBuilder {
  promptIds(row: DataRow): number[];
  sftResponseIds(row: DataRow): number[];
}

export function promptBuilder(tok: TextTokenizer, o: { formatPrompt?: string; systemPrompt?: string; responseTemplate: string }): PromptBuilder {
  const format = o.formatPrompt ? new Template(o.formatPrompt) : null;
  const response = new Template(o.responseTemplate);
  const eos = tok.eosTokenIds[0];
  return {
    promptIds(row) {
      const messages: ChatMessage[] = [];
      if (o.systemPrompt) messages.push({ role: 'system', content: o.systemPrompt });
      messages.push({ role: 'user', content: format ? format.render({ content: row.question }) : row.question });
      // Thinking is off in Qwen3's own sense: the method's format asks for <thinking> blocks itself.
      return tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt: true, enableThinking: false }), { addSpecialTokens: false });
    },
    sftResponseIds(row) {
      const gt = parseGroundTruth(row.groundTruth);
      const ids = tok.encode(response.render({ tag: gt.tag, answer: gt.answer }), { addSpecialTokens: false });
      return eos === undefined ? ids : [...ids, eos];
    },
  };
}
