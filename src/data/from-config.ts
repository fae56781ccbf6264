// The data section of a training config (src/config) turned into a loaded data set: which file,
// which columns, which templates, which image bounds and bad-row policy. The one place where config
// key names meet the loader's options, so each is spelled once.
import { readFileSync } from 'node:fs';
import type { DataConfig } from '../config/schema.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { loadRlDataset, type RlDataset } from './dataset.js';
import { DataError } from './errors.js';
import type { ResizeBounds } from './images.js';
import { PromptFormatter } from './prompt.js';
import { resolveDataFiles } from './sources.js';

/** Qwen3-VL: 16-pixel patches merged 2 x 2, so image sides are multiples of 32. */
export const QWEN3_VL_IMAGE_FACTOR = 32;

export function resizeBounds(data: DataConfig, factor = QWEN3_VL_IMAGE_FACTOR): ResizeBounds {
  return { factor, minPixels: data.min_pixels, maxPixels: data.max_pixels };
}

/** data.format_prompt, or the file data.format_prompt_path names. */
export function formatPromptOf(data: DataConfig): string | undefined {
  if (data.format_prompt_path === undefined) return data.format_prompt;
  try {
    return readFileSync(data.format_prompt_path, 'utf8');
  } catch (e) {
    throw new DataError(
      `data.format_prompt_path: cannot read ${data.format_prompt_path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      data.format_prompt_path,
    );
  }
}

export function promptFormatterFor(
  data: DataConfig,
  tokenizer: TextTokenizer,
  factor = QWEN3_VL_IMAGE_FACTOR,
): PromptFormatter {
  return new PromptFormatter(tokenizer, {
    formatPrompt: formatPromptOf(data),
    formatPromptSource: data.format_prompt_path ? `data.format_prompt_path ${data.format_prompt_path}` : undefined,
    systemPrompt: data.system_prompt,
    resize: resizeBounds(data, factor),
  });
}

/**
 * Loads data.train_files or data.val_files (which must be set; a file, a shard or save_to_disk
 * directory, or a hub dataset as org/name@split, see sources.ts) with the config's columns, templates,
 * image bounds, bad-row policy and, when data.filter_overlong_prompts, the max_prompt_length filter.
 */
export async function loadDatasetFromConfig(
  data: DataConfig,
  split: 'train' | 'val',
  tokenizer: TextTokenizer,
  o: { imageFactor?: number; warn?: (message: string) => void } = {},
): Promise<RlDataset> {
  const file = split === 'train' ? data.train_files : data.val_files;
  if (file === undefined) throw new DataError('data.val_files is not set');
  const formatter = promptFormatterFor(data, tokenizer, o.imageFactor);
  return loadRlDataset(resolveDataFiles(file), {
    promptKey: data.prompt_key,
    answerKey: data.answer_key,
    imageKey: data.image_key,
    // EasyR1's default column is 'images'; MediX-R1's data calls it 'image': both work unrenamed.
    imageKeyAliases: data.image_key === 'images' ? ['image'] : [],
    imageDir: data.image_dir,
    onBadRow: data.on_bad_row,
    resize: resizeBounds(data, o.imageFactor),
    formatter,
    maxPromptLength: data.filter_overlong_prompts ? data.max_prompt_length : undefined,
    warn: o.warn,
  });
}
