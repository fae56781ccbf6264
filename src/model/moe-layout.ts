// Expert weight layouts of mixture-of-experts checkpoints. The engine keeps each sparse layer's
// experts fused, as transformers 5 does in memory: mlp.experts.gate_up_proj [E, 2I, H] (each
// expert's gate rows, then its up rows) and mlp.experts.down_proj [E, H, I]. Checkpoints store them
// either one tensor per expert (qwen3_moe: mlp.experts.<e>.{gate,up,down}_proj.weight, [I, H] and
// [H, I]) or fused and transposed (Qwen3-VL-MoE releases: gate_up_proj [E, H, 2I], down_proj
// [E, I, H], which transformers' conversion mapping transposes on load); a fused tensor already in
// the engine's orientation is taken as is. Writing uses the layout transformers expects for the
// model type: per expert for qwen3_moe, fused and transposed for qwen3_vl_moe.
import type { Model, ParamInfo } from '../engine/model.js';

const PER_EXPERT = /^(.*\.mlp\.experts)\.(\d+)\.(gate|up|down)_proj\.weight$/;
const FUSED = /^(.*\.mlp\.experts)\.(gate_up|down)_proj$/;

/** Where a checkpoint tensor's values go in an engine parameter. */
export interface ExpertPiece {
  /** The engine parameter. */
  param: string;
  /** Copies the checkpoint tensor's values into the parameter's buffer. */
  place(src: Float32Array, into: Float32Array): void;
  /** The checkpoint tensor's expected shape. */
  shape: number[];
  /** Floats of the parameter this piece fills. */
  numel: number;
}

/** Copies src [n, rows, cols] into dst as [n, cols, rows]. */
function transposeBatched(src: Float32Array, dst: Float32Array, n: number, rows: number, cols: number): void {
  for (let b = 0; b < n; b++) {
    const o = b * rows * cols;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[o + c * rows + r] = src[o + r * cols + c];
  }
}

/**
 * Whether a checkpoint's fused expert tensors are transposed ([E, H, 2I] / [E, I, H]), judged by
 * the down_proj shapes it holds ([E, H, I] vs [E, I, H]; H != I in any real model). gate_up alone
 * cannot tell when H == 2I, as in tiny test models.
 */
export function fusedTransposed(shapes: Map<string, number[]>, params: Map<string, ParamInfo>): boolean {
  for (const [name, shape] of shapes) {
    const m = FUSED.exec(name);
    if (m?.[2] !== 'down') continue;
    const p = params.get(name);
    if (!p) continue;
    const [E, H, I] = p.shape;
    if (H !== I && shape.join(',') === [E, I, H].join(',')) return true;
  }
  return false;
}

/**
 * The engine parameter a checkpoint expert tensor belongs to, or null when `name` is not an expert
 * tensor of a parameter in `params`.
 */
export function expertPiece(name: string, params: Map<string, ParamInfo>, transposed: boolean): ExpertPiece | null {
  const per = PER_EXPERT.exec(name);
  if (per) {
    const part = per[3];
    const param = params.get(`${per[1]}.${part === 'down' ? 'down' : 'gate_up'}_proj`);
    if (!param) return null;
    const e = Number(per[2]);
    const [E, a, b] = param.shape;
    if (e >= E) return null;
    // gate_up [E, 2I, H]: expert e's gate rows at e*2I*H, its up rows I*H further; down [E, H, I].
    const size = part === 'down' ? a * b : (a / 2) * b;
    const offset = part === 'down' ? e * a * b : e * a * b + (part === 'up' ? size : 0);
    return {
      param: param.name,
      shape: part === 'down' ? [a, b] : [a / 2, b],
      numel: size,
      place: (src, into) => into.set(src, offset),
    };
  }
  const fused = FUSED.exec(name);
  if (fused && params.has(name)) {
    const p = params.get(name)!;
    const [E, a, b] = p.shape;
    if (!transposed) return null; // the engine's own orientation: an ordinary parameter
    return {
      param: name,
      shape: [E, b, a],
      numel: p.numel,
      place: (src, into) => transposeBatched(src, into, E, b, a),
    };
  }
  return null;
}

/** A fused parameter filled piece by piece (per-expert checkpoints), set once complete. */
export class ExpertAssembly {
  private readonly pending = new Map<string, { data: Float32Array; filled: number }>();
  private readonly done = new Set<string>();

  constructor(private readonly model: Model) {}

  add(piece: ExpertPiece, values: Float32Array): void {
    const numel = this.model.parameters().find((p) => p.name === piece.param)!.numel;
    let slot = this.pending.get(piece.param);
    if (!slot) {
      if (this.done.has(piece.param)) throw new Error(`'${piece.param}' is already complete (an expert tensor twice?)`);
      slot = { data: new Float32Array(numel), filled: 0 };
      this.pending.set(piece.param, slot);
    }
    piece.place(values, slot.data);
    slot.filled += piece.numel;
    if (slot.filled > numel) throw new Error(`more expert tensors than '${piece.param}' holds (one twice?)`);
    if (slot.filled === numel) {
      this.model.setParameter(piece.param, slot.data);
      this.pending.delete(piece.param);
      this.done.add(piece.param);
    }
  }

  /** Parameters some of whose pieces never came. */
  incomplete(): string[] {
    return [...this.pending.keys()];
  }
}

/** Expert tensors as `modelType` checkpoints store them, for a sparse layer's fused parameter. */
export function expertTensorsToWrite(
  modelType: string,
  p: ParamInfo,
  values: () => Float32Array,
): { name: string; shape: number[]; values: () => Float32Array }[] | null {
  const m = FUSED.exec(p.name);
  if (!m) return null;
  const [E, a, b] = p.shape;
  if (modelType === 'qwen3_vl_moe')
    return [
      {
        name: p.name,
        shape: [E, b, a],
        values: () => {
          const out = new Float32Array(p.numel);
          transposeBatched(values(), out, E, a, b);
          return out;
        },
      },
    ];
  const out: { name: string; shape: number[]; values: () => Float32Array }[] = [];
  for (let e = 0; e < E; e++) {
    if (m[2] === 'down') {
      out.push({
        name: `${m[1]}.${e}.down_proj.weight`,
        shape: [a, b],
        values: () => values().slice(e * a * b, (e + 1) * a * b),
      });
    } else {
      const half = (a / 2) * b;
      out.push({
        name: `${m[1]}.${e}.gate_proj.weight`,
        shape: [a / 2, b],
        values: () => values().slice(e * a * b, e * a * b + half),
      });
      out.push({
        name: `${m[1]}.${e}.up_proj.weight`,
        shape: [a / 2, b],
        values: () => values().slice(e * a * b + half, (e + 1) * a * b),
      });
    }
  }
  return out;
}
