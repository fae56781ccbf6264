// The generation contract that rollouts (trainer), `medix serve` and `medix eval` code against.
// The engine behind it (src/generate/) runs batched prefill + decode with a KV cache in the addon.
import type { ProcessedImage } from '../model/vision/image-processor.js';

export interface SamplingParams {
  /** Number of samples for this prompt; they share the prompt's prefill (default 1). */
  n?: number;
  /** Maximum generated tokens per sample (default 256). */
  maxNewTokens?: number;
  /** Below 1e-6 (0 included) means greedy (default 1). */
  temperature?: number;
  /** Nucleus sampling mass in (0, 1] (default 1: off). */
  topP?: number;
  /** Keep the k most likely tokens; 0 or -1 is off (default off). */
  topK?: number;
  /** Drop tokens whose probability is below minP times the top probability (default 0: off). */
  minP?: number;
  /** CTRL-style penalty > 1 discourages tokens already in the prompt or output (default 1: off). */
  repetitionPenalty?: number;
  /** Seed of this request's sampler; the same seed and inputs give the same tokens (default random). */
  seed?: number;
  /** Stop strings; the returned text ends before the first one found. */
  stop?: string[];
  /** Token ids that end a sample in addition to the tokenizer's EOS ids. */
  stopTokenIds?: number[];
  /** Do not stop at EOS ids (benchmarks). */
  ignoreEos?: boolean;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface GenerationRequest {
  promptIds: number[];
  /**
   * Qwen3-VL: the prompt's images in the order of their image-token runs (each image fills
   * t*h*w/merge^2 consecutive image tokens), as the image processor gives them.
   */
  images?: ProcessedImage[];
  params: SamplingParams;
  /** Aborting ends every sample of the request with finishReason 'abort'. */
  signal?: AbortSignal;
  /** Called for every sampled token of every sample, in order, as decoding proceeds (streaming). */
  onToken?: (event: TokenEvent) => void;
}

export interface TokenEvent {
  sample: number;
  tokenId: number;
  /** Log-probability of the token under the temperature-scaled distribution. */
  logprob: number;
  /** Newly decodable text (may be '' while a multi-byte character is incomplete). */
  textDelta: string;
}

export interface GeneratedSample {
  tokenIds: number[];
  text: string;
  /**
   * Log-probability of each sampled token under the model's distribution at the request's
   * temperature, before top-k/top-p/min-p truncation and penalties: the "old log-probs" RL needs,
   * equal (within the documented tolerance) to Model.forward over the finished sequence.
   */
  logprobs: number[];
  finishReason: FinishReason;
}

export interface GenerationResult {
  promptTokens: number;
  samples: GeneratedSample[];
}

export interface GenerationEngine {
  /** Queues a request; it joins the running batch between decode steps (continuous batching). */
  generate(request: GenerationRequest): Promise<GenerationResult>;
  /** Finishes the requests in flight, then releases the engine. */
  close(): Promise<void>;
}
