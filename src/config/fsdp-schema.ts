// worker.actor.fsdp: EasyR1's FSDP keys. Only enable_full_shard has a meaning here; the other two
// are accepted at false (EasyR1 configs carry them) and refused at true with the reason, because a
// key that silently does nothing would let a user believe memory was saved.
import { z } from 'zod';

export const fsdpConfigSchema = z
  .object({
    /** Shard weights, gradients and AdamW moments (src/engine/full-shard.ts); false: ZeRO-1 optimizer sharding. */
    enable_full_shard: z.boolean().default(false),
    enable_cpu_offload: z.boolean().default(false),
    enable_rank0_init: z.boolean().default(false),
  })
  .strict();

export type FsdpConfig = z.infer<typeof fsdpConfigSchema>;

/** Why each EasyR1 key that medix does not implement is refused when set to true. */
const UNSUPPORTED: Partial<Record<keyof FsdpConfig, string>> = {
  enable_cpu_offload:
    'not supported: CPU training already keeps every shard in host memory, and the CUDA engine has no ' +
    'offload of shards to the host yet; remove the key or set it to false',
  enable_rank0_init:
    'not supported: every rank reads the checkpoint and keeps only its slices (no rank holds the whole ' +
    'model for a broadcast); remove the key or set it to false',
};

/** Reports each fsdp key set to true that medix does not implement, with its path under worker.actor. */
export function checkFsdpKeys(f: FsdpConfig, fail: (path: string[], message: string) => void): void {
  for (const [key, why] of Object.entries(UNSUPPORTED)) {
    if (f[key as keyof FsdpConfig]) fail(['worker', 'actor', 'fsdp', key], why);
  }
}
