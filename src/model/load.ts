// Loads a Hugging Face model directory (config.json + single or sharded safetensors) into an
// engine Model, one tensor at a time (never two copies of the weights in JS memory).
import fs from 'node:fs';
import path from 'node:path';

import type { Device } from '../config/schema.js';
import { Model } from '../engine/model.js';
import { parseHfConfig, type HfModelInfo } from './hf-config.js';
import { ExpertAssembly, expertPiece, fusedTransposed } from './moe-layout.js';
import { SafetensorsFile } from './safetensors.js';

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

/** The safetensors files of a directory and, when sharded, which file the index says holds each tensor. */
function weightFiles(dir: string): { files: string[]; owner: Map<string, string> | null } {
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    let map: unknown;
    try {
      map = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map;
    } catch (err) {
      throw new CheckpointError(`${index}: cannot read (${(err as Error).message})`);
    }
    if (typeof map !== 'object' || map === null || Array.isArray(map))
      throw new CheckpointError(`${index}: weight_map must be an object`);
    const owner = new Map<string, string>();
    for (const [name, file] of Object.entries(map)) {
      // Shards are plain file names beside the index; anything else could read outside the model.
      if (typeof file !== 'string' || file !== path.basename(file) || !file.endsWith('.safetensors'))
        throw new CheckpointError(
          `${index}: weight_map['${name}'] = ${JSON.stringify(file)} is not a .safetensors file name in this directory`,
        );
      owner.set(name, path.join(dir, file));
    }
    const files = [...new Set(owner.values())];
    for (const f of files)
      if (!fs.existsSync(f)) throw new CheckpointError(`${index}: shard ${path.basename(f)} is missing from ${dir}`);
    return { files, owner };
  }
  const single = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(single)) {
    // A fully sharded run's checkpoint keeps its weights as slices beside model/ (checkpoint-full-shard.ts).
    const slices = fs.existsSync(path.join(dir, '..', 'slices'))
      ? `; this checkpoint of a fully sharded run holds its weights in ${path.join(dir, '..', 'slices')}: write a Hugging Face directory from it with medix merge`
      : '';
    throw new CheckpointError(`${dir}: no model.safetensors or model.safetensors.index.json${slices}`);
  }
  return { files: [single], owner: null };
}

export interface LoadOptions {
  /** Recompute activations in backward instead of storing them (see Model.create). */
  recompute?: boolean;
  /** Where the model runs (see Model.create); default cpu. */
  device?: Device;
}

/**
 * Streams each tensor from its file into the engine (read its byte range, convert to float32,
 * setParameter, drop), so memory holds the engine's weights plus one tensor at a time.
 */
export async function loadModel(dir: string, options: LoadOptions = {}): Promise<Model> {
  const info = readHfConfig(dir);
  const model = Model.create(info.config, { initStd: 0, recompute: options.recompute, device: options.device });
  const { files, owner } = weightFiles(dir);
  const wanted = new Map(model.parameters().map((p) => [p.name, p]));
  const loadedFrom = new Map<string, string>();
  const seen = new Set<string>();
  // Mixture-of-experts checkpoints: per-expert tensors are assembled into the fused parameters.
  const shapes = new Map<string, number[]>();
  if (info.config.numExperts)
    for (const file of files) {
      const st = SafetensorsFile.open(file);
      for (const [name, entry] of st.tensors) shapes.set(name, entry.shape);
      st.close();
    }
  const transposed = fusedTransposed(shapes, wanted);
  const experts = new ExpertAssembly(model);
  for (const file of files) {
    const st = SafetensorsFile.open(file);
    try {
      for (const [name, entry] of st.tensors) {
        seen.add(name);
        const indexed = owner?.get(name);
        if (owner && indexed !== file)
          throw new CheckpointError(
            `${file}: holds tensor '${name}', which model.safetensors.index.json ${indexed ? `places in ${path.basename(indexed)}` : 'does not list'}`,
          );
        const piece = info.config.numExperts ? expertPiece(name, wanted, transposed) : null;
        if (piece) {
          if (entry.shape.join(',') !== piece.shape.join(','))
            throw new CheckpointError(
              `${file}: tensor '${name}' has shape [${entry.shape}], the config implies [${piece.shape}]`,
            );
          try {
            experts.add(piece, st.readFloat32(name));
          } catch (err) {
            throw new CheckpointError(`${file}: tensor '${name}': ${(err as Error).message}`);
          }
          loadedFrom.set(piece.param, file);
          continue;
        }
        const p = wanted.get(name);
        if (!p) {
          // Tied checkpoints may still carry lm_head.weight; transformers ties it to the embedding
          // and ignores the stored copy, and so does the engine (it has no separate lm_head).
          if (name === 'lm_head.weight' && info.config.tieEmbeddings) continue;
          throw new CheckpointError(
            `${file}: unexpected tensor '${name}' (not a parameter of this ${info.modelType} model)`,
          );
        }
        if (entry.shape.join(',') !== p.shape.join(','))
          throw new CheckpointError(
            `${file}: tensor '${name}' has shape [${entry.shape}], the config implies [${p.shape}]`,
          );
        if (loadedFrom.has(name))
          throw new CheckpointError(`${file}: tensor '${name}' was already read from ${loadedFrom.get(name)}`);
        try {
          model.setParameter(name, st.readFloat32(name));
        } catch (err) {
          throw new CheckpointError(`${file}: tensor '${name}': ${(err as Error).message}`);
        }
        loadedFrom.set(name, file);
      }
    } finally {
      st.close();
    }
  }
  const phantom = owner ? [...owner.keys()].filter((n) => !seen.has(n)) : [];
  if (phantom.length)
    throw new CheckpointError(
      `${path.join(dir, 'model.safetensors.index.json')}: lists '${phantom[0]}' in ${path.basename(owner!.get(phantom[0])!)}, which does not hold it (${phantom.length} such)`,
    );
  const partial = experts.incomplete();
  if (partial.length)
    throw new CheckpointError(`${dir}: some experts of '${partial[0]}' are missing (${partial.length} such tensors)`);
  const missing = [...wanted.keys()].filter((n) => !loadedFrom.has(n));
  if (missing.length)
    throw new CheckpointError(
      `${dir}: missing ${missing.length} tensor(s), e.g. '${missing.slice(0, 3).join("', '")}'`,
    );
  return model;
}
