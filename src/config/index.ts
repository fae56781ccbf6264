// The training configuration: schema, loading with overrides, errors.
export * from './schema.js';
export { loadTrainingConfig, parseTrainingConfig, resolveConfigPaths, trainingConfigToYaml } from './load.js';
export { applyOverride, applyOverrides } from './overrides.js';
export { TrainingConfigError } from './errors.js';
