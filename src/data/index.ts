// Training data: JSONL / Parquet / Arrow rows (files, shard directories, save_to_disk, the hub cache) under configurable columns, checked images, prompt templates
// with a length filter, and a seeded, resumable sample order.
export { DataError, formatLocation } from './errors.js';
export type { RowLocation } from './errors.js';
export {
  readRecords,
  readJsonlRecords,
  readParquetRecords,
  readParquetCell,
  dataFormat,
  InvalidUtf8,
} from './records.js';
export type { RawRecord, RecordOrFault } from './records.js';
export {
  ImageFault,
  confinedImagePath,
  imageSources,
  imageSize,
  smartResize,
  imageTokenCount,
  decodeImage,
} from './images.js';
export type { ImageSource, ParquetImageRef, ImageSize, DecodedImage, ResizeBounds } from './images.js';
export { PromptFormatter, PromptError, IMAGE_PLACEHOLDER } from './prompt.js';
export type { PromptOptions, EncodedPrompt } from './prompt.js';
export { loadRlDataset } from './dataset.js';
export { resolveDataFiles, hubCacheDir, isHubDatasetId } from './sources.js';
export { readArrowRecords } from './arrow-records.js';
export type { RlSample, RlDataset, DataColumns, LoadDatasetOptions, DatasetStats } from './dataset.js';
export { DataOrder, epochOrder } from './order.js';
export type { DataPosition } from './order.js';
export {
  loadDatasetFromConfig,
  promptFormatterFor,
  formatPromptOf,
  resizeBounds,
  QWEN3_VL_IMAGE_FACTOR,
} from './from-config.js';
