// Reward throughput: the rule components on one core, the embedding component (the tests' tiny
// encoder and a BGE-small-shaped BERT with random weights, batched as the reward batches them),
// and the judge path against a local server with a fixed latency (requests in flight and rate,
// against the ideal concurrency / latency).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccuracyJudge } from '../src/reward/judge-accuracy.js';
import { OnnxEmbedder } from '../src/reward/embedding.js';
import { extractAnswer, invalidAnswerReason, parseGroundTruth } from '../src/reward/normalize.js';
import { formatScore, modalityScore } from '../src/reward/rules.js';
import { wordPieceTokenizerJson, writeTinyEncoder } from '../test/helpers/tiny-encoder.js';
import { BGE_SMALL, writeBertOnnx } from './bert-onnx.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';

const WORDS = [
  'right',
  'left',
  'lower',
  'upper',
  'lobe',
  'pneumonia',
  'consolidation',
  'pleural',
  'effusion',
  'fracture',
  'of',
  'the',
  'with',
  'no',
  'mass',
  'nodule',
  'glioma',
  'infarct',
  'acute',
  'chronic',
];

function sentences(n: number, seed = 1): string[] {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  return Array.from({ length: n }, () =>
    Array.from({ length: 4 + (next() % 12) }, () => WORDS[next() % WORDS.length]).join(' '),
  );
}

function rules(ctx: BenchContext): BenchRecord {
  const answers = sentences(1000);
  const responses = answers.map((a, i) =>
    i % 4 === 0
      ? `it is ${a}.`
      : `<X_RAY> <thinking>The image shows ${a}; considering the differential.</thinking>\n<answer>${a}.</answer>`,
  );
  const gt = parseGroundTruth('<X_RAY> right lower lobe pneumonia');
  const reps = ctx.quick ? 5 : 50;
  let sink = 0;
  const t0 = performance.now();
  for (let r = 0; r < reps; r++)
    for (const resp of responses) {
      sink += formatScore(resp) + modalityScore(resp, gt.tag);
      sink += invalidAnswerReason(extractAnswer(resp)) ? 0 : 1;
    }
  const rate = (reps * responses.length) / ((performance.now() - t0) / 1000);
  ctx.log(`rules: ${rate.toFixed(0)} responses/s (checksum ${sink})`);
  return {
    name: 'reward',
    metric: 'rules_responses_per_s',
    value: rate,
    unit: 'responses/s',
    note: 'format + modality + answer extraction and validity, one thread',
  };
}

async function embedding(ctx: BenchContext, dir: string): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const tiny = writeTinyEncoder(dir);
  const bertVocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', ...WORDS];
  while (bertVocab.length < BGE_SMALL.vocab) bertVocab.push(`w${bertVocab.length}`);
  writeFileSync(join(dir, 'bert-tokenizer.json'), JSON.stringify(wordPieceTokenizerJson(bertVocab)));
  const shape = ctx.quick ? { ...BGE_SMALL, layers: 2 } : BGE_SMALL;
  writeBertOnnx(join(dir, 'bert.onnx'), shape);
  const models = [
    {
      label: 'tiny test encoder',
      model: tiny.modelFile,
      tokenizer: tiny.tokenizerFile,
      metric: 'embed_tiny_sentences_per_s',
    },
    {
      label: `BGE-small-shaped BERT (${shape.layers} layers, hidden ${shape.hidden}, random weights)`,
      model: join(dir, 'bert.onnx'),
      tokenizer: join(dir, 'bert-tokenizer.json'),
      metric: 'embed_bge_small_sentences_per_s',
    },
  ];
  const texts = sentences(ctx.quick ? 64 : 512, 2);
  for (const m of models) {
    const e = await OnnxEmbedder.load({
      model: m.model,
      tokenizer: m.tokenizer,
      pooling: 'cls',
      normalize: true,
      batchSize: 32,
      maxLength: 512,
      threads: 1,
    });
    await e.embed(texts.slice(0, 32)); // warm-up
    const t0 = performance.now();
    await e.embed(texts);
    const rate = texts.length / ((performance.now() - t0) / 1000);
    await e.close();
    ctx.log(`embedding, ${m.label}: ${rate.toFixed(1)} sentences/s`);
    out.push({
      name: 'reward',
      metric: m.metric,
      value: rate,
      unit: 'sentences/s',
      note: `${m.label}; batch 32, 1 onnxruntime thread, 4-15 words per sentence`,
    });
  }
  return out;
}

async function judgePath(ctx: BenchContext): Promise<BenchRecord[]> {
  const latency = 50;
  const concurrency = 64;
  let inFlight = 0;
  let peak = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      peak = Math.max(peak, ++inFlight);
      setTimeout(() => {
        inFlight--;
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ choices: [{ message: { content: 'YES' }, finish_reason: 'stop' }] }));
      }, latency);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const judge = new AccuracyJudge({
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
      model: 'bench',
      concurrency,
    });
    const n = ctx.quick ? 256 : 2048;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: n }, (_, i) => judge.verdict(`answer ${i}`, 'reference')));
    const rate = n / ((performance.now() - t0) / 1000);
    const ideal = concurrency / (latency / 1000);
    ctx.log(`judge: ${rate.toFixed(0)} verdicts/s, peak ${peak} in flight; ideal ${ideal.toFixed(0)}/s`);
    const note = `${n} verdicts, concurrency ${concurrency}, ${latency} ms server latency`;
    return [
      { name: 'reward', metric: 'judge_verdicts_per_s', value: rate, unit: 'verdicts/s', note },
      { name: 'reward', metric: 'judge_peak_in_flight', value: peak, unit: 'requests', note },
      {
        name: 'reward',
        metric: 'judge_concurrency_efficiency',
        value: rate / ideal,
        unit: 'fraction',
        note: 'measured / (concurrency / latency)',
      },
    ];
  } finally {
    await new Promise((r) => server.close(r));
  }
}

async function run(ctx: BenchContext): Promise<BenchRecord[]> {
  const dir = mkdtempSync(join(tmpdir(), 'medix-bench-reward-'));
  try {
    return [rules(ctx), ...(await embedding(ctx, dir)), ...(await judgePath(ctx))];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const bench: BenchModule = { order: 60, run };
export default bench;
