// The dtypes a model can compute in, without loading the addon (the config schema and the CLI flags
// name them). Master weights, gradients and AdamW moments stay f32 whatever the compute dtype.
export const COMPUTE_DTYPES = ['f32', 'bf16'] as const;
export type ComputeDtype = (typeof COMPUTE_DTYPES)[number];
