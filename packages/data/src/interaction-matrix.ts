import { DataError } from './errors.js';

/**
 * A users x items binary interaction matrix in CSR form: for user `u`, its item ids are
 * `indices[indptr[u] .. indptr[u+1])`, sorted ascending, without duplicates. Optional
 * per-entry timestamps run parallel to `indices`.
 *
 * Membership tests (`has`) are binary searches over a user's row: O(log degree).
 */
export class InteractionMatrix {
  /** Row pointers, length `numUsers + 1`. */
  readonly indptr: Int32Array;
  /** Item ids, row by row, each row sorted ascending. */
  readonly indices: Int32Array;
  /** Timestamp of each entry (parallel to `indices`), or `null`. */
  readonly timestamps: Float64Array | null;
  /** Number of rows (users). */
  readonly numUsers: number;
  /** Number of columns (items). */
  readonly numItems: number;
  private entryUsersCache: Int32Array | undefined;

  constructor(
    numUsers: number,
    numItems: number,
    indptr: Int32Array,
    indices: Int32Array,
    timestamps: Float64Array | null = null,
  ) {
    if (indptr.length !== numUsers + 1) {
      throw new DataError(
        `indptr has length ${indptr.length}, expected numUsers + 1 = ${numUsers + 1}`,
      );
    }
    if (indptr[numUsers] !== indices.length) {
      throw new DataError(
        `indptr ends at ${indptr[numUsers]}, expected indices.length = ${indices.length}`,
      );
    }
    if (timestamps !== null && timestamps.length !== indices.length) {
      throw new DataError('timestamps must run parallel to indices');
    }
    this.numUsers = numUsers;
    this.numItems = numItems;
    this.indptr = indptr;
    this.indices = indices;
    this.timestamps = timestamps;
  }

  /**
   * Builds the matrix from (user, item[, timestamp]) pairs. Rows are sorted; a duplicate
   * (user, item) pair is an error (merge duplicates first with `dedupe`).
   */
  static fromPairs(
    numUsers: number,
    numItems: number,
    users: ArrayLike<number>,
    items: ArrayLike<number>,
    timestamps: ArrayLike<number> | null = null,
  ): InteractionMatrix {
    const n = users.length;
    const indptr = new Int32Array(numUsers + 1);
    for (let k = 0; k < n; k++) {
      const u = users[k]!;
      const i = items[k]!;
      if (!(u >= 0 && u < numUsers))
        throw new DataError(`user id ${u} is out of range [0, ${numUsers})`);
      if (!(i >= 0 && i < numItems))
        throw new DataError(`item id ${i} is out of range [0, ${numItems})`);
      indptr[u + 1]!++;
    }
    for (let u = 0; u < numUsers; u++) indptr[u + 1]! += indptr[u]!;
    const cursor = indptr.slice(0, numUsers);
    const indices = new Int32Array(n);
    const times = timestamps ? new Float64Array(n) : null;
    for (let k = 0; k < n; k++) {
      const at = cursor[users[k]!]!++;
      indices[at] = items[k]!;
      if (times) times[at] = timestamps![k]!;
    }
    sortRows(indptr, indices, times);
    for (let u = 0; u < numUsers; u++) {
      for (let p = indptr[u]! + 1; p < indptr[u + 1]!; p++) {
        if (indices[p] === indices[p - 1]) {
          throw new DataError(
            `duplicate interaction (user ${u}, item ${indices[p]}): merge duplicates with dedupe() first`,
          );
        }
      }
    }
    return new InteractionMatrix(numUsers, numItems, indptr, indices, times);
  }

  /** Number of stored interactions. */
  get nnz(): number {
    return this.indices.length;
  }

  /** Number of interactions of user `u`. */
  degree(u: number): number {
    return this.indptr[u + 1]! - this.indptr[u]!;
  }

  /** The sorted item ids of user `u` (a view, not a copy). */
  row(u: number): Int32Array {
    return this.indices.subarray(this.indptr[u]!, this.indptr[u + 1]!);
  }

  /** True when user `u` interacted with item `i` (binary search). */
  has(u: number, i: number): boolean {
    let lo = this.indptr[u]!;
    let hi = this.indptr[u + 1]! - 1;
    const indices = this.indices;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = indices[mid]!;
      if (v < i) lo = mid + 1;
      else if (v > i) hi = mid - 1;
      else return true;
    }
    return false;
  }

  /** Number of interactions per item (length `numItems`). */
  itemDegrees(): Int32Array {
    const counts = new Int32Array(this.numItems);
    for (let p = 0; p < this.indices.length; p++) counts[this.indices[p]!]!++;
    return counts;
  }

  /** Number of users with at least one interaction. */
  activeUsers(): number {
    let n = 0;
    for (let u = 0; u < this.numUsers; u++) if (this.indptr[u + 1]! > this.indptr[u]!) n++;
    return n;
  }

  /** The user of each stored entry (parallel to `indices`); computed once and cached. */
  entryUsers(): Int32Array {
    if (this.entryUsersCache === undefined) {
      const out = new Int32Array(this.indices.length);
      for (let u = 0; u < this.numUsers; u++) out.fill(u, this.indptr[u]!, this.indptr[u + 1]!);
      this.entryUsersCache = out;
    }
    return this.entryUsersCache;
  }

  /** Iterates `[user, item]` pairs in row order. */
  *pairs(): IterableIterator<[user: number, item: number]> {
    for (let u = 0; u < this.numUsers; u++) {
      for (let p = this.indptr[u]!; p < this.indptr[u + 1]!; p++) yield [u, this.indices[p]!];
    }
  }
}

function sortRows(indptr: Int32Array, indices: Int32Array, timestamps: Float64Array | null): void {
  const numUsers = indptr.length - 1;
  if (timestamps === null) {
    for (let u = 0; u < numUsers; u++) indices.subarray(indptr[u]!, indptr[u + 1]!).sort();
    return;
  }
  const order: number[] = [];
  for (let u = 0; u < numUsers; u++) {
    const start = indptr[u]!;
    const end = indptr[u + 1]!;
    if (end - start < 2) continue;
    order.length = 0;
    for (let p = start; p < end; p++) order.push(p);
    order.sort((a, b) => indices[a]! - indices[b]!);
    const items = order.map((p) => indices[p]!);
    const times = order.map((p) => timestamps[p]!);
    indices.set(items, start);
    timestamps.set(times, start);
  }
}
