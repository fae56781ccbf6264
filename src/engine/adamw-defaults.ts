// AdamW's default hyperparameters, once for the TypeScript side: torch.optim.AdamW's (as EasyR1 and
// the MediX-R1 recipes train), which native/ops/adamw.h's AdamWConfig also holds for the C++ side.
// A module of its own, without the addon, so the config schema can read it.
export const ADAMW_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2 } as const;
