// Request bodies of the OpenAI-compatible API, validated with zod so a bad field is answered with
// a 400 that names it (OpenAI's error shape carries the field as `param`).
import { z } from 'zod';

const stopString = z.string().min(1, 'stop strings must not be empty');
const stop = z
  .union([stopString, z.array(stopString).max(16)])
  .optional()
  .nullable();

const sampling = {
  model: z.string(),
  max_tokens: z.number().int().positive().optional().nullable(),
  temperature: z.number().min(0).max(2).optional().nullable(),
  top_p: z.number().gt(0).max(1).optional().nullable(),
  top_k: z.number().int().min(-1).optional().nullable(),
  min_p: z.number().min(0).max(1).optional().nullable(),
  repetition_penalty: z.number().positive().optional().nullable(),
  n: z.number().int().min(1).max(64).optional().nullable(),
  stop,
  // The engine's sampler seeds take non-negative integers up to 2^53.
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 53)
    .optional()
    .nullable(),
  stream: z.boolean().optional().nullable(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).optional().nullable(),
  user: z.string().optional(),
};

const contentPart = z.union([
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('image_url'), image_url: z.object({ url: z.string() }) }),
]);

// 'developer' is OpenAI's newer name for system instructions; chat templates know only 'system'.
const messageRole = z
  .enum(['system', 'developer', 'user', 'assistant', 'tool'])
  .transform((role) => (role === 'developer' ? 'system' : role));

// Token ids are checked against the vocabulary by the engine (a 400 naming the bad id).
const tokenIds = z.array(z.number().int()).min(1);

export const chatRequestSchema = z.object({
  ...sampling,
  messages: z.array(z.object({ role: messageRole, content: z.union([z.string(), z.array(contentPart)]) })).min(1),
  max_completion_tokens: z.number().int().positive().optional().nullable(),
  logprobs: z.boolean().optional().nullable(),
  top_logprobs: z.number().int().min(0).max(20).optional().nullable(),
  chat_template_kwargs: z.object({ enable_thinking: z.boolean().optional() }).optional().nullable(),
});

export const completionRequestSchema = z.object({
  ...sampling,
  prompt: z.union([
    z.string(),
    tokenIds,
    z
      .array(z.union([z.string(), tokenIds]))
      .min(1)
      .max(64),
  ]),
  logprobs: z.number().int().min(0).max(20).optional().nullable(),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;
export type CompletionRequest = z.infer<typeof completionRequestSchema>;
