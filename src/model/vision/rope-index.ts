// Multimodal rotary positions of Qwen3-VL (transformers' get_rope_index for images): rows (t, h, w)
// per token. Text tokens share one running position on all three rows; the merged tokens of an image
// of grid (t, h, w) take (start + frame, start + row, start + column) over its (h/merge) x (w/merge)
// token grid in row-major order, start being the position after the preceding text; text after an
// image resumes at one past the largest position used so far.

export interface RopeIndexOptions {
  imageTokenId: number;
  /** spatial_merge_size of the vision tower. */
  merge: number;
}

/**
 * Positions [3, T] (component-major, as PackedBatch.positions wants them) of one sequence. `grids`
 * holds (t, h, w) per image in the order the images' tokens appear; each image's tokens must be one
 * consecutive run of t*h*w/merge^2 image tokens.
 */
export function multimodalPositions(tokens: Int32Array, grids: Int32Array, o: RopeIndexOptions): Int32Array {
  const T = tokens.length;
  const out = new Int32Array(3 * T);
  let next = 0; // position of the next text token
  let image = 0;
  for (let i = 0; i < T; ) {
    if (tokens[i] !== o.imageTokenId) {
      out[i] = out[T + i] = out[2 * T + i] = next++;
      i++;
      continue;
    }
    if (3 * image >= grids.length) throw new Error(`token ${i}: an image token beyond the ${image} image(s) given`);
    const [t, h, w] = [grids[3 * image], grids[3 * image + 1] / o.merge, grids[3 * image + 2] / o.merge];
    const n = t * h * w;
    for (let k = 0; k < n; k++)
      if (tokens[i + k] !== o.imageTokenId)
        throw new Error(`token ${i + k}: image ${image} needs ${n} consecutive image tokens from token ${i}`);
    let top = next;
    for (let k = 0; k < n; k++) {
      const frame = Math.floor(k / (h * w)),
        row = Math.floor((k % (h * w)) / w),
        col = k % w;
      out[i + k] = next + frame;
      out[T + i + k] = next + row;
      out[2 * T + i + k] = next + col;
      top = Math.max(top, next + frame, next + row, next + col);
    }
    next = top + 1;
    i += n;
    image++;
  }
  if (3 * image !== grids.length)
    throw new Error(`${grids.length / 3} image(s) given but ${image} found in the tokens`);
  return out;
}

/** The same over a packed batch: each sequence numbered on its own, images taken in order. */
export function packedMultimodalPositions(
  tokens: Int32Array,
  cuSeqlens: Int32Array,
  grids: Int32Array,
  o: RopeIndexOptions,
): Int32Array {
  const T = tokens.length;
  const out = new Int32Array(3 * T);
  let firstImage = 0;
  for (let s = 0; s + 1 < cuSeqlens.length; s++) {
    const seq = tokens.subarray(cuSeqlens[s], cuSeqlens[s + 1]);
    let images = 0;
    for (let k = 0; k < seq.length; ) {
      if (seq[k] !== o.imageTokenId) {
        k++;
        continue;
      }
      const g = 3 * (firstImage + images);
      k += (grids[g] * grids[g + 1] * grids[g + 2]) / (o.merge * o.merge);
      images++;
    }
    const pos = multimodalPositions(seq, grids.subarray(3 * firstImage, 3 * (firstImage + images)), o);
    for (let c = 0; c < 3; c++) out.set(pos.subarray(c * seq.length, (c + 1) * seq.length), c * T + cuSeqlens[s]);
    firstImage += images;
  }
  return out;
}
