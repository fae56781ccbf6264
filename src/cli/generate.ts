// `medix generate --model DIR --prompt TEXT [--image PATH ...]`: completions of one prompt (with its
// images, for a Qwen3-VL model) from a model directory, streamed to stdout as they are decoded (one
// sample) or printed as JSON lines for scripts.
import type { Command } from 'commander';
import type { Device } from '../config/schema.js';
import { requireDevice } from '../engine/device.js';
import { setComputeDtype } from '../engine/bf16.js';
import type { ComputeDtype } from '../engine/compute-dtype.js';
import { join, resolve } from 'node:path';
import { createGenerationEngine, requestCachedTokens } from '../generate/engine.js';
import type { GenerationResult } from '../generate/types.js';
import { loadModel, readHfConfig } from '../model/load.js';
import { processImage, visualTokenCount, type ProcessedImage } from '../model/vision/image-processor.js';
import { modelImageProcessor } from '../model/vision/model-images.js';
import type { Model } from '../engine/model.js';
import {
  encodeChatPrompt,
  expandImagePads,
  imagePadId,
  loadTokenizer,
  TokenizerError,
  type ChatContentPart,
  type HfTokenizer,
} from '../tokenizer/index.js';
import {
  collect,
  computeDtypeOption,
  deviceOption,
  nonNegativeInt,
  nonNegativeNumber,
  positiveInt,
  probability,
} from './options.js';

interface GenerateOptions {
  device: Device;
  computeDtype: ComputeDtype;
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed?: number;
  n: number;
  chat?: boolean;
  enableThinking?: boolean;
  stop?: string[];
  json?: boolean;
  image?: string[];
}

/**
 * The prompt's token ids: one user message in the model's chat template (the default; the images
 * first, then the text), or the raw text (which must then hold one <|image_pad|> per image). Each
 * image's pad is repeated to the image's token count.
 */
function promptIds(tokenizer: HfTokenizer, o: GenerateOptions, imageTokens: number[]): number[] {
  if (o.chat === false) {
    if (o.enableThinking !== undefined)
      throw new Error(
        '--enable-thinking and --no-enable-thinking switch the chat template; they do nothing with --no-chat',
      );
    if (o.prompt === '') throw new Error('--prompt is empty: with --no-chat there is nothing to continue');
    const ids = tokenizer.encode(o.prompt, { addSpecialTokens: false });
    if (imageTokens.length === 0) return ids;
    try {
      return expandImagePads(ids, imagePadId(tokenizer), imageTokens);
    } catch (err) {
      if (err instanceof TokenizerError) throw new Error(`--prompt with --no-chat: ${err.message}`);
      throw err;
    }
  }
  const images = imageTokens.map((): ChatContentPart => ({ type: 'image' }));
  const parts: ChatContentPart[] = [...images, { type: 'text', text: o.prompt }];
  const content = imageTokens.length ? parts : o.prompt;
  try {
    const options = { addGenerationPrompt: true, enableThinking: o.enableThinking ?? true };
    return encodeChatPrompt(tokenizer, [{ role: 'user', content }], options, imageTokens).ids;
  } catch (err) {
    if (err instanceof TokenizerError) throw new Error(`${err.message}; pass --no-chat to use the prompt as raw text`);
    throw err;
  }
}

/** The --image files through the model's image processor, in order; a fault names the file. */
async function loadImages(dir: string, model: Model, files: readonly string[]): Promise<ProcessedImage[]> {
  if (files.length === 0) return [];
  const processor = modelImageProcessor(dir, model);
  return Promise.all(files.map((f) => processImage({ path: resolve(f) }, processor, `--image ${f}`)));
}

function printResult(result: GenerationResult, o: GenerateOptions, streamed: boolean): void {
  const { samples } = result;
  if (o.json) {
    samples.forEach((s, index) =>
      console.log(
        JSON.stringify({
          index,
          text: s.text,
          finish_reason: s.finishReason,
          prompt_tokens: result.promptTokens,
          completion_tokens: s.tokenIds.length,
          token_ids: s.tokenIds,
        }),
      ),
    );
  } else if (streamed) {
    const [s] = samples;
    if (!s.text.endsWith('\n')) process.stdout.write('\n');
    console.error(`medix generate: ${s.tokenIds.length} tokens, finish_reason ${s.finishReason}`);
  } else {
    samples.forEach((s, i) => {
      console.log(
        `--- completion ${i + 1} of ${samples.length} (${s.tokenIds.length} tokens, finish_reason ${s.finishReason}) ---`,
      );
      console.log(s.text);
    });
  }
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('complete a prompt with a model directory: text streamed to stdout (one sample), or --json lines')
    .requiredOption('--model <dir>', 'Hugging Face model directory (config.json, safetensors, tokenizer)')
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--max-tokens <n>', 'most new tokens per completion', positiveInt, 256)
    .option('--temperature <t>', 'sampling temperature (0: greedy)', nonNegativeNumber, 1)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1] (1: off)', probability, 1)
    .option('--top-k <k>', 'keep the k most likely tokens (0: off)', nonNegativeInt, 0)
    .option(
      '--seed <n>',
      'seed of the sampler: the same seed gives the same completions (default: random)',
      nonNegativeInt,
    )
    .option('-n, --n <n>', 'completions of the prompt (they share its prefill)', positiveInt, 1)
    .option(
      '--chat',
      "the prompt is one user message in the model's chat template, answered by the assistant (the default)",
    )
    .option('--no-chat', 'the prompt is raw text to continue (base models, prompts already templated)')
    .option('--enable-thinking', 'with the chat template: think first, as Qwen3 does by default (the default)')
    .option(
      '--no-enable-thinking',
      'with the chat template: its thinking-off switch (Qwen3: an empty <think></think> block)',
    )
    .option('--stop <text>', 'end a completion before this text (repeatable)', collect)
    .option(
      '--json',
      'print one JSON line per completion: index, text, finish_reason, prompt_tokens, completion_tokens, token_ids',
    )
    .option('--image <path>', 'an image for the prompt (Qwen3-VL models; repeatable, in order)', collect)
    .addOption(deviceOption())
    .addOption(computeDtypeOption())
    .action(async (o: GenerateOptions) => {
      requireDevice(o.device, '--device');
      const dir = resolve(o.model);
      const [model, tokenizer] = await Promise.all([loadModel(dir, { device: o.device }), loadTokenizer(dir)]);
      setComputeDtype(model, o.computeDtype);
      const images = await loadImages(dir, model, o.image ?? []);
      const merge = model.config.vision?.spatialMergeSize ?? 1;
      const ids = promptIds(
        tokenizer,
        o,
        images.map((im) => visualTokenCount(im, merge)),
      );
      const stream = o.n === 1 && !o.json;
      // As vLLM's max_model_len: a completion may not run past the model's context (and the cache it needs).
      const context = readHfConfig(dir).contextLength;
      if (context !== undefined && ids.length + o.maxTokens > context)
        throw new Error(
          `--max-tokens ${o.maxTokens}: the prompt's ${ids.length} tokens and ${o.maxTokens} new ones exceed the ` +
            `model's context of ${context} tokens (max_position_embeddings in ${join(dir, 'config.json')})`,
        );
      // One request: the KV cache holds exactly what it can need (not a server's default, which a long
      // --max-tokens would exceed).
      const maxCachedTokens = requestCachedTokens(ids.length, o.n, o.maxTokens);
      const engine = createGenerationEngine(model, { tokenizer, maxBatchSize: o.n, maxCachedTokens });
      try {
        const result = await engine.generate({
          promptIds: ids,
          images,
          params: {
            n: o.n,
            maxNewTokens: o.maxTokens,
            temperature: o.temperature,
            topP: o.topP,
            topK: o.topK,
            seed: o.seed,
            stop: o.stop ?? [],
          },
          onToken: stream ? (e) => process.stdout.write(e.textDelta) : undefined,
        });
        printResult(result, o, stream);
      } finally {
        await engine.close();
      }
    });
}
