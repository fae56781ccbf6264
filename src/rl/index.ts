// The RL algorithm functions: advantage estimators, DAPO filtering and overlong shaping, KL in the
// reward with its controllers, the policy and SFT losses with their aggregation and KL estimators,
// the LR schedule and batch splitting. All pure; the trainer's loop composes them.
export * from './advantages.js';
export * from './online-filter.js';
export * from './overlong.js';
export * from './kl.js';
export * from './lr-schedule.js';
export * from './batching.js';
export * from './aggregation.js';
export * from './kl-estimator.js';
export * from './policy-loss.js';
export * from './sft-loss.js';
export { groupIndices } from './groups.js';
