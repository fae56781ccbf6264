// `medix serve --model DIR`: an OpenAI-compatible server over a Hugging Face model directory (with
// image content parts for a Qwen3-VL model).
import type { Command } from 'commander';
import type { Device } from '../config/schema.js';
import { requireDevice } from '../engine/device.js';
import { realpathSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Model } from '../engine/model.js';
import { createGenerationEngine } from '../generate/engine.js';
import { loadModel } from '../model/load.js';
import { DEFAULT_IMAGE_THREADS, ImagePool } from '../model/vision/image-pool.js';
import { modelImageProcessor } from '../model/vision/model-images.js';
import { DEFAULT_IMAGE_LIMITS, type ServeImages } from '../serve/chat-images.js';
import { startServer } from '../serve/server.js';
import { loadTokenizer } from '../tokenizer/index.js';
import { deviceOption, nonNegativeInt, positiveInt } from './options.js';

interface ImageFlags {
  allowLocalImages?: string;
  maxImages: number;
  maxImageBytes: number;
  maxImagePixels: number;
}

interface ServeFlags extends ImageFlags {
  device: Device;
  model: string;
  servedModelName?: string;
  host: string;
  port: number;
  apiKey?: string;
  maxTokensCap: number;
  maxBodyBytes: number;
  maxBatch: number;
  enableThinking?: boolean;
  maxQueuedTokens: number;
  allowHost?: string[];
}

/** A vision model's image intake; none for a text model (which --allow-local-images cannot serve). */
function serveImages(dir: string, model: Model, o: ImageFlags): ServeImages | undefined {
  if (!model.config.vision && o.allowLocalImages === undefined) return undefined;
  const processor = modelImageProcessor(dir, model);
  let allowLocalImages: string | undefined;
  if (o.allowLocalImages !== undefined) {
    try {
      allowLocalImages = realpathSync(o.allowLocalImages);
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new Error(`--allow-local-images ${o.allowLocalImages}: ${why}`);
    }
    if (!statSync(allowLocalImages).isDirectory())
      throw new Error(`--allow-local-images ${o.allowLocalImages}: not a directory`);
  }
  const limits = { maxImages: o.maxImages, maxImageBytes: o.maxImageBytes, maxImagePixels: o.maxImagePixels };
  const pool = new ImagePool(processor, DEFAULT_IMAGE_THREADS);
  return { pool, merge: processor.mergeSize, limits, allowLocalImages };
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, /health)',
    )
    .requiredOption('--model <dir>', 'Hugging Face model directory (config.json, safetensors, tokenizer)')
    .option('--served-model-name <name>', 'the name clients use (default: the directory name)')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port (0: any free one)', nonNegativeInt, 8000)
    .option('--api-key <key>', 'require this bearer token (default: env MEDIX_API_KEY, else none)')
    .option('--max-tokens-cap <n>', 'cap on max_tokens per request', positiveInt, 4096)
    .option('--max-body-bytes <n>', 'largest request body', positiveInt, 1 << 20)
    .option('--max-batch <n>', 'most sequences decoding at once', positiveInt, 64)
    .option(
      '--max-queued-tokens <n>',
      'most sample-tokens (prompts x n x max_tokens) queued; past it: 429',
      positiveInt,
      1 << 20,
    )
    .option('--allow-host <names...>', 'Host header names accepted besides the bound address (against DNS rebinding)')
    .option(
      '--enable-thinking',
      'chats think by default, as Qwen3 (the default; clients can set chat_template_kwargs.enable_thinking)',
    )
    .option(
      '--no-enable-thinking',
      'chats default to thinking off (clients can still set chat_template_kwargs.enable_thinking)',
    )
    .option('--allow-local-images <dir>', 'image parts may name local files (file:// URLs or paths) in this folder')
    .option('--max-images <n>', 'most images in one request', positiveInt, DEFAULT_IMAGE_LIMITS.maxImages)
    .option('--max-image-bytes <n>', 'most bytes of one image', positiveInt, DEFAULT_IMAGE_LIMITS.maxImageBytes)
    .option('--max-image-pixels <n>', 'most pixels of one image', positiveInt, DEFAULT_IMAGE_LIMITS.maxImagePixels)
    .addOption(deviceOption())
    .action(async (o: ServeFlags) => {
      requireDevice(o.device, '--device');
      const dir = resolve(o.model);
      const [model, tokenizer] = await Promise.all([loadModel(dir, { device: o.device }), loadTokenizer(dir)]);
      const images = serveImages(dir, model, o);
      const engine = createGenerationEngine(model, { tokenizer, maxBatchSize: o.maxBatch });
      const server = await startServer({
        engine,
        tokenizer,
        modelName: o.servedModelName ?? basename(dir),
        host: o.host,
        port: o.port,
        apiKey: o.apiKey ?? process.env.MEDIX_API_KEY,
        maxTokensCap: o.maxTokensCap,
        maxBodyBytes: o.maxBodyBytes,
        enableThinking: o.enableThinking,
        maxQueuedTokens: o.maxQueuedTokens,
        allowHosts: o.allowHost,
        images,
      });
      console.log(`medix serve: ${o.servedModelName ?? basename(dir)} at ${server.url}/v1`);
      const stop = () => {
        console.log('medix serve: shutting down after in-flight requests');
        server.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
