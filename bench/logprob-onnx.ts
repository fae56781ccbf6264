// The log-prob head as ONNX Runtime runs it, for the fused_logprob benchmark: MatMul (hidden x head^T)
// -> LogSoftmax over the vocabulary -> GatherElements of each token's target, which materialises the
// T x V logits (and their log-softmax) the fused head avoids. Hidden, head^T and targets are inputs.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** The serialised model: inputs hidden [T, H], head_t [H, V], targets [T, 1] (int64); output logp [T, 1]. */
export function logprobOnnx(): Uint8Array {
  const { FLOAT, INT64 } = onnx.TensorProto.DataType;
  const axisAttribute = (i: number) =>
    onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i });
  const node = (opType: string, input: string[], output: string, axis?: number) =>
    onnx.NodeProto.create({
      opType,
      input,
      output: [output],
      attribute: axis === undefined ? [] : [axisAttribute(axis)],
    });
  const io = (name: string, elemType: number, shape: string[]) => {
    const dim = shape.map((dimParam) => ({ dimParam }));
    return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim } } } });
  };
  const graph = onnx.GraphProto.create({
    name: 'logprob',
    node: [
      node('MatMul', ['hidden', 'head_t'], 'logits'),
      node('LogSoftmax', ['logits'], 'logsoftmax', 1),
      node('GatherElements', ['logsoftmax', 'targets'], 'logp', 1),
    ],
    input: [io('hidden', FLOAT, ['T', 'H']), io('head_t', FLOAT, ['H', 'V']), io('targets', INT64, ['T', 'one'])],
    output: [io('logp', FLOAT, ['T', 'one'])],
  });
  const opsetImport = [{ domain: '', version: 17 }];
  const model = onnx.ModelProto.create({ irVersion: 8, producerName: 'medix-bench', opsetImport, graph });
  return onnx.ModelProto.encode(model).finish();
}
