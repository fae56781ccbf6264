// Where a model, the reference policy and the generation engine run: `device: cpu | cuda` in the
// config (worker.actor.device, worker.rollout.device) and `--device` on serve, generate and eval. One
// check for every entry point, made before anything loads: a run asked to use a GPU never falls back
// to the CPU silently, and the error says which of the things a GPU run needs is missing.
import type { Device } from '../config/schema.js';
import { buildInfo, cudaDevices } from './system.js';

/**
 * Throws unless `device` can run a model in this process. `where` names the setting that chose it
 * (a config key or a flag). With a GPU, `cuda` runs models (dense, mixture-of-experts, Qwen3-VL) on the
 * CUDA backend; its kernels are checked op by op against the CPU (scripts/device-check.sh).
 */
export function requireDevice(device: Device, where: string): void {
  if (device === 'cpu') return;
  const refuse = (why: string) => {
    throw new Error(`${where}: device cuda: ${why}; use device cpu`);
  };
  if (!buildInfo().cuda) refuse('this build of medix has no CUDA (nvcc was not found when the addon was built)');
  const found = cudaDevices();
  if (found.count === 0) refuse(`no CUDA device (${found.reason})`);
}
