// The order in which samples are drawn: epochs of a seeded shuffle (or the file order), read a batch
// at a time. The position {epoch, index, seed} is all the state there is, so a checkpoint that stores
// it resumes on exactly the sample the interrupted run would have drawn next.
import { prng } from '../util/prng.js';

export interface DataPosition {
  epoch: number;
  /** Samples of this epoch already drawn. */
  index: number;
  seed: number;
}

/** The permutation of 0..size-1 for one epoch: Fisher-Yates driven by a PRNG seeded from (seed, epoch). */
export function epochOrder(size: number, seed: number, epoch: number, shuffle = true): Uint32Array {
  const order = new Uint32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  if (!shuffle) return order;
  // Each epoch's stream starts from its own seed, so epoch k's order never depends on how far epoch k-1 was read.
  const rand = prng((Math.imul(seed >>> 0, 0x9e3779b1) + epoch) >>> 0);
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

export class DataOrder {
  private pos: DataPosition;
  private order: Uint32Array;

  /** `from`: a saved position() to resume at; default the start of epoch 0. */
  constructor(
    readonly size: number,
    private readonly o: { seed: number; shuffle: boolean },
    from?: DataPosition,
  ) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`DataOrder: the data set must have at least one sample, got ${size}`);
    this.pos = from ? { ...from } : { epoch: 0, index: 0, seed: o.seed };
    const { epoch, index, seed } = this.pos;
    if (seed !== o.seed)
      throw new RangeError(
        `DataOrder: the saved position was drawn with data.seed ${seed}, the config now says ${o.seed}`,
      );
    if (!Number.isInteger(epoch) || epoch < 0 || !Number.isInteger(index) || index < 0 || index > size) {
      throw new RangeError(
        `DataOrder: saved position epoch ${epoch}, index ${index} does not fit a data set of ${size} samples`,
      );
    }
    this.order = epochOrder(size, seed, epoch, o.shuffle);
  }

  position(): DataPosition {
    return { ...this.pos };
  }

  /** The next n sample indices, continuing into the next epoch (reshuffled) when one ends. */
  next(n: number): number[] {
    const out: number[] = [];
    while (out.length < n) {
      if (this.pos.index === this.size) {
        this.pos = { ...this.pos, epoch: this.pos.epoch + 1, index: 0 };
        this.order = epochOrder(this.size, this.pos.seed, this.pos.epoch, this.o.shuffle);
      }
      out.push(this.order[this.pos.index++]);
    }
    return out;
  }
}
