// The composite reward's components by name, as RewardResult, metrics.jsonl and algorithm.filter_key spell them.
export const REWARD_COMPONENTS = ['overall', 'format', 'accuracy_llm', 'accuracy_embed', 'modality'] as const;
export type RewardComponent = (typeof REWARD_COMPONENTS)[number];

/** The prefix of the held-out accuracy per modality in metrics.jsonl (`val/accuracy_llm/X_RAY`). */
export const MODALITY_ACCURACY = 'val/accuracy_llm/';
