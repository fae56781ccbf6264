// Images per second through Qwen3-VL's image preprocessing (decode, bicubic resize, normalise, patch
// rows) and through the vision tower's forward and forward+backward, for a Qwen3-VL-2B-shaped tower
// with random weights at 512x512 and 1024x1024 (--quick: a 2-block narrow tower at 256x256), with MFU
// against the FMA peak (and the best sgemm) measured in the run.
//
// Model FLOPs per image (the usual accounting): 2 * patches * (matrix parameters) for the linear
// layers, plus 4 * patches^2 * hidden per block for QK^T and PV (bidirectional: every pair); fwd+bwd
// is 3x forward.
import sharp from 'sharp';

import {
  patchInputs,
  visionParameters,
  visionTowerBackward,
  visionTowerForward,
  type VisionTowerConfig,
} from '../src/engine/vision.js';
import { processImage } from '../src/model/vision/image-processor.js';
import { utilisation } from './machine.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';

const qwen3vl2b: VisionTowerConfig = {
  depth: 24,
  hiddenSize: 1024,
  numHeads: 16,
  intermediateSize: 4096,
  outHiddenSize: 2048,
  inChannels: 3,
  temporalPatchSize: 2,
  patchSize: 16,
  spatialMergeSize: 2,
  positionSide: 48,
  deepstackIndexes: [5, 11, 17],
};
const quick: VisionTowerConfig = {
  ...qwen3vl2b,
  depth: 2,
  hiddenSize: 64,
  numHeads: 4,
  intermediateSize: 256,
  outHiddenSize: 128,
  deepstackIndexes: [0],
};

function towerFlops(c: VisionTowerConfig, patches: number): number {
  const C = c.hiddenSize,
    K = C * c.spatialMergeSize ** 2;
  const mergers = ((1 + c.deepstackIndexes.length) * (K * K + K * c.outHiddenSize)) / c.spatialMergeSize ** 2;
  const matrix = patchInputs(c) * C + c.depth * (4 * C * C + 2 * C * c.intermediateSize) + mergers;
  return 2 * patches * matrix + c.depth * 4 * patches * patches * C;
}

async function syntheticPng(side: number): Promise<Buffer> {
  const raw = Buffer.alloc(side * side * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 24;
  return sharp(raw, { raw: { width: side, height: side, channels: 3 } })
    .png()
    .toBuffer();
}

const bench: BenchModule = {
  order: 30,
  async run(ctx: BenchContext): Promise<BenchRecord[]> {
    const c = ctx.quick ? quick : qwen3vl2b;
    const records: BenchRecord[] = [];
    const params = visionParameters(c).map((p, i) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      return Float32Array.from({ length: n }, (_, k) =>
        p.name.includes('norm') && p.name.endsWith('weight') ? 1 : 0.02 * Math.sin(k * 12.9898 + i),
      );
    });
    for (const side of ctx.quick ? [256] : [512, 1024]) {
      const png = await syntheticPng(side);
      const proc = {
        patchSize: 16,
        temporalPatchSize: 2,
        mergeSize: 2,
        minPixels: side * side,
        maxPixels: side * side,
        imageMean: [0.5, 0.5, 0.5] as [number, number, number],
        imageStd: [0.5, 0.5, 0.5] as [number, number, number],
        rescaleFactor: 1 / 255,
      };
      let t0 = performance.now();
      const img = await processImage({ bytes: png }, proc, 'synthetic');
      const preMs = performance.now() - t0;
      const grids = Int32Array.from(img.grid);
      const patches = img.grid[0] * img.grid[1] * img.grid[2];
      t0 = performance.now();
      const out = visionTowerForward(params, img.pixels, grids, c);
      const fwdMs = performance.now() - t0;
      const dMerged = new Float32Array(out.merged.length).fill(1e-3);
      t0 = performance.now();
      visionTowerBackward(
        params,
        img.pixels,
        grids,
        c,
        dMerged,
        out.deepstack.map((d) => new Float32Array(d.length).fill(1e-3)),
      );
      const fwdBwdMs = performance.now() - t0; // the binding's backward runs its own forward first
      const shape = `${c.depth} blocks, hidden ${c.hiddenSize}, ${side}x${side} (${patches} patches)`;
      ctx.log(
        `vision_tower: ${shape}: preprocess ${preMs.toFixed(0)} ms, forward ${fwdMs.toFixed(0)} ms, fwd+bwd ${fwdBwdMs.toFixed(0)} ms`,
      );
      const gflops = (3 * towerFlops(c, patches)) / (fwdBwdMs / 1000) / 1e9;
      records.push(
        {
          name: 'vision_tower',
          metric: `preprocess_images_per_s_${side}`,
          value: 1000 / preMs,
          unit: 'images/s',
          note: shape,
        },
        {
          name: 'vision_tower',
          metric: `forward_images_per_s_${side}`,
          value: 1000 / fwdMs,
          unit: 'images/s',
          note: shape,
        },
        {
          name: 'vision_tower',
          metric: `train_images_per_s_${side}`,
          value: 1000 / fwdBwdMs,
          unit: 'images/s',
          note: shape,
        },
        { name: 'vision_tower', metric: `train_gflops_${side}`, value: gflops, unit: 'GFLOP/s', note: shape },
      );
      records.push(...utilisation(ctx, 'vision_tower', `mfu_${side}`, gflops, shape));
    }
    return records;
  },
};

export default bench;
