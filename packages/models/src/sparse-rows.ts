/**
 * A sparse set of rows of one table with a float64 vector per row: the gradient (or
 * perturbation) of the rows a mini-batch touches. Rows keep their insertion order, which
 * is the order of first appearance in the batch, so sums over a batch are deterministic.
 */
export class SparseRows {
  readonly dimension: number;
  private ids: Int32Array;
  private data: Float64Array;
  private count = 0;
  private readonly slots = new Map<number, number>();
  private view: Float64Array | null = null;

  constructor(dimension: number, capacity = 64) {
    this.dimension = dimension;
    this.ids = new Int32Array(Math.max(1, capacity));
    this.data = new Float64Array(Math.max(1, capacity) * dimension);
  }

  /** Number of rows held. */
  get size(): number {
    return this.count;
  }

  /** Row ids, in insertion order (a view, valid until the next insertion). */
  get rows(): Int32Array {
    return this.ids.subarray(0, this.count);
  }

  /** The values, `size x dimension` (a view, valid until the next insertion; cached, cheap to read in loops). */
  get values(): Float64Array {
    this.view ??= this.data.subarray(0, this.count * this.dimension);
    return this.view;
  }

  /** Offset of `row`'s vector in {@link values}, or -1 when the row is absent. */
  offsetOf(row: number): number {
    const slot = this.slots.get(row);
    return slot === undefined ? -1 : slot * this.dimension;
  }

  /** Offset of `row`'s vector, inserting a zero vector when the row is absent. */
  ensure(row: number): number {
    let slot = this.slots.get(row);
    if (slot === undefined) {
      slot = this.count++;
      this.view = null;
      if (slot === this.ids.length) {
        const ids = new Int32Array(this.ids.length * 2);
        ids.set(this.ids);
        this.ids = ids;
        const data = new Float64Array(this.data.length * 2);
        data.set(this.data);
        this.data = data;
      }
      this.ids[slot] = row;
      this.data.fill(0, slot * this.dimension, (slot + 1) * this.dimension);
      this.slots.set(row, slot);
    }
    return slot * this.dimension;
  }

  /** Removes every row (keeps the storage). */
  clear(): void {
    this.count = 0;
    this.view = null;
    this.slots.clear();
  }

  /** Row-wise L2 norms, in row order. */
  norms(): Float64Array {
    const out = new Float64Array(this.count);
    const d = this.dimension;
    for (let r = 0; r < this.count; r++) {
      let s = 0;
      for (let f = r * d; f < (r + 1) * d; f++) s += this.data[f]! * this.data[f]!;
      out[r] = Math.sqrt(s);
    }
    return out;
  }
}

/** Sparse rows per named table (gradients) or per surface (perturbations). */
export type SparseRowsByName = Map<string, SparseRows>;
