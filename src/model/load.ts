// Loads a Hugging Face model directory (config.json + single or sharded safetensors) into an
// engine Model, one tensor at a time (never two copies of the weights in JS memory).
import fs from 'node:fs';
import path from 'node:path';

import { Model } from '../engine/model.js';
import { parseHfConfig, type HfModelInfo } from './hf-config.js';
import { SafetensorsFile, numel } from './safetensors.js';

export class CheckpointError extends Error {}

export function readHfConfig(dir: string): HfModelInfo {
  const file = path.join(dir, 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CheckpointError(`${file}: cannot read model config (${(err as Error).message})`);
  }
  return parseHfConfig(json, file);
}

/** The safetensors files of a directory and which file holds each tensor. */
function weightFiles(dir: string): { files: string[]; owner: Map<string, string> | null } {
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map;
    } catch (err) {
      throw new CheckpointError(`${index}: cannot read (${(err as Error).message})`);
    }
    if (typeof map !== 'object' || map === null) throw new CheckpointError(`${index}: no weight_map object`);
    const owner = new Map(Object.entries(map).map(([k, f]) => [k, path.join(dir, f)]));
    return { files: [...new Set(owner.values())], owner };
  }
  const single = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(single)) throw new CheckpointError(`${dir}: no model.safetensors or model.safetensors.index.json`);
  return { files: [single], owner: null };
}

export async function loadModel(dir: string, options: { recompute?: boolean } = {}): Promise<Model> {
  const info = readHfConfig(dir);
  const model = Model.create(info.config, { initStd: 0, recompute: options.recompute });
  const { files } = weightFiles(dir);
  const wanted = new Map(model.parameters().map((p) => [p.name, p]));
  const loaded = new Set<string>();
  for (const file of files) {
    const st = SafetensorsFile.open(file);
    try {
      for (const [name, entry] of st.tensors) {
        const p = wanted.get(name);
        if (!p) {
          if (info.ignoredPrefixes.some((pre) => name.startsWith(pre))) continue;
          // Tied checkpoints sometimes still carry lm_head.weight: it must equal the embedding.
          if (name === 'lm_head.weight' && info.config.tieEmbeddings) continue;
          throw new CheckpointError(`${file}: unexpected tensor '${name}' (not a parameter of this ${info.modelType} model)`);
        }
        if (entry.shape.join(',') !== p.shape.join(','))
          throw new CheckpointError(`${file}: tensor '${name}' has shape [${entry.shape}], the config implies [${p.shape}]`);
        if (numel(entry.shape) !== p.numel) throw new CheckpointError(`${file}: tensor '${name}' has the wrong size`);
        model.setParameter(name, st.readFloat32(name));
        loaded.add(name);
      }
    } finally {
      st.close();
    }
  }
  const missing = [...wanted.keys()].filter((n) => !loaded.has(n));
  if (missing.length)
    throw new CheckpointError(`${dir}: missing ${missing.length} tensor(s), e.g. '${missing.slice(0, 3).join("', '")}'`);
  return model;
}
