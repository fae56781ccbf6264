// Builds a small real sentence encoder for tests and benchmarks: a WordPiece tokenizer.json and an
// ONNX graph (token + token-type embedding lookup, a MatMul, tanh, zeroed padding) whose
// last_hidden_state a test can recompute directly from the returned weights.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const VOCAB = [
  '[PAD]',
  '[UNK]',
  '[CLS]',
  '[SEP]',
  'lobar',
  'pneumonia',
  'pneu',
  '##monia',
  'right',
  'lower',
  'lobe',
  'fracture',
  'of',
  'the',
  'no',
  'glioma',
  'effusion',
  'pleural',
  ',',
];

export interface TinyEncoder {
  modelFile: string;
  tokenizerFile: string;
  hidden: number;
  /** Row-major [vocab, hidden], [2, hidden] and [hidden, hidden]. */
  tokenEmbedding: Float32Array;
  typeEmbedding: Float32Array;
  projection: Float32Array;
}

/** Deterministic pseudo-random weights in [-1, 1) (a fixed LCG, so tests do not depend on Math.random). */
function weights(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** A BERT-style WordPiece tokenizer.json over `vocab`, whose first four entries are [PAD] [UNK] [CLS] [SEP]. */
export function wordPieceTokenizerJson(vocab: readonly string[]) {
  const special = (id: number) => ({
    id,
    content: vocab[id],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [0, 1, 2, 3].map(special),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.map((w, i) => [w, i])),
    },
  };
}

const dim = (d: string | number) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d });
const valueInfo = (name: string, elemType: number, shape: (string | number)[]) =>
  onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim: shape.map(dim) } } } });
const floats = (name: string, dims: number[], data: Float32Array) =>
  onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, floatData: Array.from(data) });

/** Writes model.onnx and tokenizer.json into `dir`; `vocab` defaults to the medical toy vocabulary. */
export function writeTinyEncoder(dir: string, hidden = 8, vocab: readonly string[] = VOCAB): TinyEncoder {
  const tokenEmbedding = weights(vocab.length * hidden, 1);
  const typeEmbedding = weights(2 * hidden, 2);
  const projection = weights(hidden * hidden, 3);
  const { FLOAT, INT64 } = onnx.TensorProto.DataType;
  const node = (opType: string, input: string[], output: string, attribute: object[] = []) =>
    onnx.NodeProto.create({ opType, input, output: [output], attribute });
  const graph = onnx.GraphProto.create({
    name: 'tiny_encoder',
    node: [
      node('Gather', ['tok_emb', 'input_ids'], 'tok'),
      node('Gather', ['type_emb', 'token_type_ids'], 'typ'),
      node('Add', ['tok', 'typ'], 'emb'),
      node('MatMul', ['emb', 'proj'], 'mm'),
      node('Tanh', ['mm'], 'act'),
      node('Cast', ['attention_mask'], 'maskf', [
        onnx.AttributeProto.create({ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }),
      ]),
      node('Unsqueeze', ['maskf', 'last_axis'], 'mask3'),
      node('Mul', ['act', 'mask3'], 'last_hidden_state'),
    ],
    initializer: [
      floats('tok_emb', [vocab.length, hidden], tokenEmbedding),
      floats('type_emb', [2, hidden], typeEmbedding),
      floats('proj', [hidden, hidden], projection),
      onnx.TensorProto.create({ name: 'last_axis', dims: [1], dataType: INT64, int64Data: [-1] }),
    ],
    input: [
      valueInfo('input_ids', INT64, ['batch', 'tokens']),
      valueInfo('attention_mask', INT64, ['batch', 'tokens']),
      valueInfo('token_type_ids', INT64, ['batch', 'tokens']),
    ],
    output: [valueInfo('last_hidden_state', FLOAT, ['batch', 'tokens', hidden])],
  });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'medix-test',
    opsetImport: [{ domain: '', version: 13 }],
    graph,
  });
  const modelFile = join(dir, 'model.onnx');
  const tokenizerFile = join(dir, 'tokenizer.json');
  writeFileSync(modelFile, onnx.ModelProto.encode(model).finish());
  writeFileSync(tokenizerFile, JSON.stringify(wordPieceTokenizerJson(vocab)));
  return { modelFile, tokenizerFile, hidden, tokenEmbedding, typeEmbedding, projection };
}

/** last_hidden_state of one unpadded sequence, computed directly: tanh((E[id] + T[0]) · P). */
export function directHidden(enc: TinyEncoder, ids: readonly number[]): Float32Array[] {
  const h = enc.hidden;
  return ids.map((id) => {
    const out = new Float32Array(h);
    for (let j = 0; j < h; j++) {
      let s = 0;
      for (let k = 0; k < h; k++)
        s += (enc.tokenEmbedding[id * h + k] + enc.typeEmbedding[k]) * enc.projection[k * h + j];
      out[j] = Math.tanh(s);
    }
    return out;
  });
}
