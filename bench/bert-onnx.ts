// A BERT encoder in ONNX with random weights, for benchmarks: the architecture of BGE-small /
// MedEmbed-small (embeddings with positions and token types, post-norm layers of multi-head
// self-attention with a padding mask and an erf-GELU feed-forward), so its throughput is that of
// the real model without downloading it. Weights are stored raw (float32 little-endian).
import { writeFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export interface BertShape {
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
  vocab: number;
  maxPositions: number;
}

/** bge-small-en-v1.5's shape. */
export const BGE_SMALL: BertShape = {
  layers: 12,
  hidden: 384,
  heads: 12,
  intermediate: 1536,
  vocab: 30522,
  maxPositions: 512,
};

export function writeBertOnnx(file: string, s: BertShape, seed = 7): void {
  const { FLOAT, INT64 } = onnx.TensorProto.DataType;
  let state = seed >>> 0;
  const init: InstanceType<typeof onnx.TensorProto>[] = [];
  const nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  const weight = (name: string, dims: number[], scale = 0.05, fill?: number) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      data[i] = fill ?? (state / 2 ** 31 - 1) * scale;
    }
    init.push(onnx.TensorProto.create({ name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer) }));
    return name;
  };
  const ints = (name: string, values: number[]) => {
    init.push(onnx.TensorProto.create({ name, dims: [values.length], dataType: INT64, int64Data: values }));
    return name;
  };
  const scalar = (name: string, v: number) => {
    init.push(onnx.TensorProto.create({ name, dims: [], dataType: FLOAT, floatData: [v] }));
    return name;
  };
  let counter = 0;
  const op = (opType: string, input: string[], attrs: Record<string, number | number[]> = {}) => {
    const out = `${opType.toLowerCase()}_${counter++}`;
    const attribute = Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v)
        ? onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v })
        : Number.isInteger(v)
          ? onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v })
          : onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v }),
    );
    nodes.push(onnx.NodeProto.create({ opType, input, output: [out], attribute }));
    return out;
  };
  const layerNorm = (x: string, p: string) =>
    op('LayerNormalization', [x, weight(`${p}.g`, [s.hidden], 0, 1), weight(`${p}.b`, [s.hidden], 0, 0)], {
      axis: -1,
      epsilon: 1e-12,
    });
  const linear = (x: string, p: string, inDim: number, outDim: number) =>
    op('Add', [op('MatMul', [x, weight(`${p}.w`, [inDim, outDim])]), weight(`${p}.b`, [outDim], 0.01)]);
  const d = s.hidden / s.heads;

  // embeddings: word + position (0..T-1) + token type, then LayerNorm
  const seqLen = op('Gather', [op('Shape', ['input_ids']), ints('one', [1])], { axis: 0 });
  const len = op('Squeeze', [seqLen, ints('axis0', [0])]);
  const start = op('Squeeze', [ints('start', [0]), 'axis0']);
  const delta = op('Squeeze', [ints('delta', [1]), 'axis0']);
  const pos = op('Range', [start, len, delta]);
  let x = op('Add', [
    op('Add', [
      op('Gather', [weight('word', [s.vocab, s.hidden]), 'input_ids']),
      op('Gather', [weight('pos', [s.maxPositions, s.hidden]), pos]),
    ]),
    op('Gather', [weight('type', [2, s.hidden]), 'token_type_ids']),
  ]);
  x = layerNorm(x, 'emb.ln');
  // additive mask [B, 1, 1, T]: 0 for tokens, -10000 for padding
  const maskf = op('Cast', ['attention_mask'], { to: FLOAT });
  const bias = op('Unsqueeze', [
    op('Mul', [op('Sub', [scalar('one_f', 1), maskf]), scalar('neg', -10000)]),
    ints('axes12', [1, 2]),
  ]);
  const heads = ints('heads_shape', [0, 0, s.heads, d]);
  const merged = ints('merged_shape', [0, 0, s.hidden]);
  for (let l = 0; l < s.layers; l++) {
    const p = `l${l}`;
    const split = (t: string, perm: number[]) => op('Transpose', [op('Reshape', [t, heads])], { perm });
    const q = split(linear(x, `${p}.q`, s.hidden, s.hidden), [0, 2, 1, 3]);
    const k = split(linear(x, `${p}.k`, s.hidden, s.hidden), [0, 2, 3, 1]);
    const v = split(linear(x, `${p}.v`, s.hidden, s.hidden), [0, 2, 1, 3]);
    const scores = op('Add', [op('Mul', [op('MatMul', [q, k]), scalar(`${p}.scale`, 1 / Math.sqrt(d))]), bias]);
    const ctx = op('Reshape', [
      op('Transpose', [op('MatMul', [op('Softmax', [scores], { axis: -1 }), v])], { perm: [0, 2, 1, 3] }),
      merged,
    ]);
    x = layerNorm(op('Add', [x, linear(ctx, `${p}.o`, s.hidden, s.hidden)]), `${p}.ln1`);
    const h = linear(x, `${p}.ff1`, s.hidden, s.intermediate);
    const gelu = op('Mul', [
      op('Mul', [h, scalar(`${p}.half`, 0.5)]),
      op('Add', [op('Erf', [op('Mul', [h, scalar(`${p}.rsqrt2`, Math.SQRT1_2)])]), scalar(`${p}.one`, 1)]),
    ]);
    x = layerNorm(op('Add', [x, linear(gelu, `${p}.ff2`, s.intermediate, s.hidden)]), `${p}.ln2`);
  }
  nodes.push(onnx.NodeProto.create({ opType: 'Identity', input: [x], output: ['last_hidden_state'] }));
  const dim = (v: string | number) => (typeof v === 'string' ? { dimParam: v } : { dimValue: v });
  const io = (name: string, elemType: number, shape: (string | number)[]) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim: shape.map(dim) } } } });
  const graph = onnx.GraphProto.create({
    name: 'bert',
    node: nodes,
    initializer: init,
    input: ['input_ids', 'attention_mask', 'token_type_ids'].map((n) => io(n, INT64, ['batch', 'tokens'])),
    output: [io('last_hidden_state', FLOAT, ['batch', 'tokens', s.hidden])],
  });
  writeFileSync(
    file,
    onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 8,
        producerName: 'medix-bench',
        opsetImport: [{ domain: '', version: 17 }],
        graph,
      }),
    ).finish(),
  );
}
