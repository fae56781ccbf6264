// The SFT warm-up's target response for a reference answer "<TAG> answer": the configured Jinja
// template (variables tag and answer) rendered, tokenized, and ended with the model's EOS token so
// the model also learns to stop.
import { Template } from '@huggingface/jinja';
import { parseGroundTruth } from '../reward/normalize.js';
import { templateUses } from '../util/template-uses.js';
import type { TextTokenizer } from '../tokenizer/types.js';

export type SftTarget = (referenceAnswer: string) => number[];

export function sftTarget(tok: TextTokenizer, template: string): SftTarget {
  let t: Template;
  try {
    t = new Template(template);
  } catch (e) {
    throw new Error(`sft.response_template: not a valid Jinja template (${(e as Error).message})`);
  }
  // An undefined variable renders as nothing: a misspelt {{ answer }} would train on targets without the answer.
  if (!templateUses(t, 'answer'))
    throw new Error('sft.response_template: never uses {{ answer }}, so no target would hold the answer');
  const eos = tok.eosTokenIds[0];
  return (reference) => {
    const gt = parseGroundTruth(reference);
    const ids = tok.encode(t.render({ tag: gt.tag, answer: gt.answer }), { addSpecialTokens: false });
    return eos === undefined ? ids : [...ids, eos];
  };
}
