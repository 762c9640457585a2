/**
 * The ranking kernel: per user, the pessimistic positions of the relevant items and the
 * top-K list, from a row of scores. The calling thread and the ranking pool's workers
 * (`ranking-worker.ts`) run the same code.
 *
 * Order of candidates: score descending; at equal scores a non-relevant item comes before
 * a relevant one (the pessimistic tie rule of both papers' code: the rank of a test item
 * counts every candidate scoring >= it); then item id ascending.
 */

/** What one call of {@link RankingKernel.rankRow} needs about a user. */
export interface RankRowInput {
  /** Scores of every item for the user. */
  readonly row: Float64Array;
  /** The user's relevant items, sorted ascending. */
  readonly relevant: Int32Array;
  /** Items that are not candidates (training, validation...), sorted ascending. */
  readonly excluded: Int32Array;
  /** Length of the top list to build. */
  readonly maxCutoff: number;
  /** Also compute the exact position of relevant items ranked below `maxCutoff`. */
  readonly fullRanks: boolean;
}

/** What {@link RankingKernel.rankRow} writes. */
export interface RankRowOutput {
  /** Top items, `maxCutoff` slots from `topOffset`, -1 padded when there are fewer candidates. */
  readonly top: Int32Array;
  readonly topOffset: number;
  /**
   * Pessimistic 1-based position of each relevant item (parallel to `relevant`), from
   * `positionOffset`; 0 for "below maxCutoff" unless `fullRanks`.
   */
  readonly positions: Int32Array;
  readonly positionOffset: number;
}

export interface RankingKernel {
  /**
   * Ranks one user's row. Returns the number of candidates, or `-(item + 1)` for the first
   * candidate whose score is not finite.
   */
  rankRow(input: RankRowInput, output: RankRowOutput): number;
  /** The candidate order: true when (score, relevant, item) a comes before b. */
  before(sa: number, ra: number, ia: number, sb: number, rb: number, ib: number): boolean;
  /** Position of `value` in an ascending array, or -1. */
  indexOf(sorted: Int32Array, value: number): number;
  /**
   * Fills `rows` (`users.length x numItems`, at most 4 users) with canonical scores: each
   * item's factors are read once for all the users (4 accumulators), the sum over the
   * dimension still runs in order for every pair, so the numbers equal `scoreRow`'s.
   */
  scoreRows(
    rows: Float64Array,
    users: ArrayLike<number>,
    userFactors: Float32Array,
    itemFactors: Float32Array,
    itemBias: Float32Array | null,
    dimension: number,
    numItems: number,
  ): void;
  /** Fills `row` with the canonical inner-product scores of user `u` (see `dotScore`). */
  scoreRow(
    row: Float64Array,
    u: number,
    userFactors: Float32Array,
    itemFactors: Float32Array,
    itemBias: Float32Array | null,
    dimension: number,
    numItems: number,
  ): void;
}

/** Builds the kernel. */
export function makeRankingKernel(): RankingKernel {
  let heapScores = new Float64Array(0);
  let heapItems = new Int32Array(0);
  let heapRelevant = new Uint8Array(0);
  let isRelevant = new Uint8Array(0);

  // Heap slot a comes before slot b in the candidate order.
  function heapBefore(a: number, b: number): boolean {
    return before(
      heapScores[a]!,
      heapRelevant[a]!,
      heapItems[a]!,
      heapScores[b]!,
      heapRelevant[b]!,
      heapItems[b]!,
    );
  }

  // Min-heap on the candidate order: the root is the last of the kept items.
  function siftDown(size: number, at: number): void {
    for (;;) {
      const left = 2 * at + 1;
      if (left >= size) return;
      let worst = left;
      const right = left + 1;
      if (right < size && heapBefore(worst, right)) {
        worst = right;
      }
      if (heapBefore(worst, at)) return;
      swap(at, worst);
      at = worst;
    }
  }

  function siftUp(at: number): void {
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!heapBefore(parent, at)) return;
      swap(at, parent);
      at = parent;
    }
  }

  function swap(a: number, b: number): void {
    const s = heapScores[a]!;
    heapScores[a] = heapScores[b]!;
    heapScores[b] = s;
    const i = heapItems[a]!;
    heapItems[a] = heapItems[b]!;
    heapItems[b] = i;
    const r = heapRelevant[a]!;
    heapRelevant[a] = heapRelevant[b]!;
    heapRelevant[b] = r;
  }

  function rankRow(input: RankRowInput, output: RankRowOutput): number {
    const { row, relevant, excluded, maxCutoff, fullRanks } = input;
    const numItems = row.length;
    if (heapScores.length < maxCutoff) {
      heapScores = new Float64Array(maxCutoff);
      heapItems = new Int32Array(maxCutoff);
      heapRelevant = new Uint8Array(maxCutoff);
    }
    if (isRelevant.length < numItems) isRelevant = new Uint8Array(numItems);
    for (let r = 0; r < relevant.length; r++) isRelevant[relevant[r]!] = 1;

    let size = 0;
    let candidates = 0;
    let nextExcluded = 0;
    let failure = 0;
    for (let i = 0; i < numItems; i++) {
      if (nextExcluded < excluded.length && excluded[nextExcluded] === i) {
        nextExcluded++;
        continue;
      }
      const s = row[i]!;
      if (!(s > -Infinity && s < Infinity)) {
        failure = -(i + 1);
        break;
      }
      candidates++;
      const rel = isRelevant[i]!;
      if (size < maxCutoff) {
        heapScores[size] = s;
        heapItems[size] = i;
        heapRelevant[size] = rel;
        siftUp(size);
        size++;
      } else if (before(s, rel, i, heapScores[0]!, heapRelevant[0]!, heapItems[0]!)) {
        heapScores[0] = s;
        heapItems[0] = i;
        heapRelevant[0] = rel;
        siftDown(size, 0);
      }
    }
    if (failure !== 0) {
      for (let r = 0; r < relevant.length; r++) isRelevant[relevant[r]!] = 0;
      return failure;
    }

    // Pop the heap from the last kept item to the first.
    const { top, topOffset, positions, positionOffset } = output;
    for (let k = size; k < maxCutoff; k++) top[topOffset + k] = -1;
    for (let r = 0; r < relevant.length; r++) positions[positionOffset + r] = 0;
    for (let k = size - 1; k >= 0; k--) {
      const item = heapItems[0]!;
      top[topOffset + k] = item;
      if (heapRelevant[0]) positions[positionOffset + indexOf(relevant, item)] = k + 1;
      size--;
      if (size > 0) {
        swap(0, size);
        siftDown(size, 0);
      }
    }

    if (fullRanks) writeFullRanks(row, relevant, excluded, isRelevant, positions, positionOffset);
    for (let r = 0; r < relevant.length; r++) isRelevant[relevant[r]!] = 0;
    return candidates;
  }

  return { rankRow, scoreRow, scoreRows, before, indexOf };
}

/** "a before b" in the candidate order. */
function before(sa: number, ra: number, ia: number, sb: number, rb: number, ib: number): boolean {
  if (sa !== sb) return sa > sb;
  if (ra !== rb) return ra < rb;
  return ia < ib;
}

function indexOf(sorted: Int32Array, value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = sorted[mid]!;
    if (v < value) lo = mid + 1;
    else if (v > value) hi = mid - 1;
    else return mid;
  }
  return -1;
}

function scoreRow(
  row: Float64Array,
  u: number,
  userFactors: Float32Array,
  itemFactors: Float32Array,
  itemBias: Float32Array | null,
  dimension: number,
  numItems: number,
): void {
  const pu = u * dimension;
  for (let i = 0; i < numItems; i++) {
    const qi = i * dimension;
    let s = 0;
    for (let f = 0; f < dimension; f++) s += userFactors[pu + f]! * itemFactors[qi + f]!;
    row[i] = itemBias === null ? s : s + itemBias[i]!;
  }
}

function scoreRows(
  rows: Float64Array,
  users: ArrayLike<number>,
  userFactors: Float32Array,
  itemFactors: Float32Array,
  itemBias: Float32Array | null,
  dimension: number,
  numItems: number,
): void {
  const count = users.length;
  if (count !== 4) {
    for (let b = 0; b < count; b++) {
      scoreRow(
        rows.subarray(b * numItems, (b + 1) * numItems),
        users[b]!,
        userFactors,
        itemFactors,
        itemBias,
        dimension,
        numItems,
      );
    }
    return;
  }
  // 4 users x 4 items per step: 8 loads for 16 multiply-adds, each pair still summed
  // over the dimension in order (so the numbers equal scoreRow's exactly).
  const p0 = users[0]! * dimension;
  const p1 = users[1]! * dimension;
  const p2 = users[2]! * dimension;
  const p3 = users[3]! * dimension;
  const r1 = numItems;
  const r2 = 2 * numItems;
  const r3 = 3 * numItems;
  let i = 0;
  for (; i + 4 <= numItems; i += 4) {
    const a = i * dimension;
    const b = a + dimension;
    const c = b + dimension;
    const d = c + dimension;
    let s00 = 0,
      s01 = 0,
      s02 = 0,
      s03 = 0;
    let s10 = 0,
      s11 = 0,
      s12 = 0,
      s13 = 0;
    let s20 = 0,
      s21 = 0,
      s22 = 0,
      s23 = 0;
    let s30 = 0,
      s31 = 0,
      s32 = 0,
      s33 = 0;
    for (let f = 0; f < dimension; f++) {
      const x0 = itemFactors[a + f]!;
      const x1 = itemFactors[b + f]!;
      const x2 = itemFactors[c + f]!;
      const x3 = itemFactors[d + f]!;
      const y0 = userFactors[p0 + f]!;
      const y1 = userFactors[p1 + f]!;
      const y2 = userFactors[p2 + f]!;
      const y3 = userFactors[p3 + f]!;
      s00 += y0 * x0;
      s01 += y0 * x1;
      s02 += y0 * x2;
      s03 += y0 * x3;
      s10 += y1 * x0;
      s11 += y1 * x1;
      s12 += y1 * x2;
      s13 += y1 * x3;
      s20 += y2 * x0;
      s21 += y2 * x1;
      s22 += y2 * x2;
      s23 += y2 * x3;
      s30 += y3 * x0;
      s31 += y3 * x1;
      s32 += y3 * x2;
      s33 += y3 * x3;
    }
    if (itemBias !== null) {
      const b0 = itemBias[i]!,
        b1 = itemBias[i + 1]!,
        b2 = itemBias[i + 2]!,
        b3 = itemBias[i + 3]!;
      s00 += b0;
      s01 += b1;
      s02 += b2;
      s03 += b3;
      s10 += b0;
      s11 += b1;
      s12 += b2;
      s13 += b3;
      s20 += b0;
      s21 += b1;
      s22 += b2;
      s23 += b3;
      s30 += b0;
      s31 += b1;
      s32 += b2;
      s33 += b3;
    }
    rows[i] = s00;
    rows[i + 1] = s01;
    rows[i + 2] = s02;
    rows[i + 3] = s03;
    rows[r1 + i] = s10;
    rows[r1 + i + 1] = s11;
    rows[r1 + i + 2] = s12;
    rows[r1 + i + 3] = s13;
    rows[r2 + i] = s20;
    rows[r2 + i + 1] = s21;
    rows[r2 + i + 2] = s22;
    rows[r2 + i + 3] = s23;
    rows[r3 + i] = s30;
    rows[r3 + i + 1] = s31;
    rows[r3 + i + 2] = s32;
    rows[r3 + i + 3] = s33;
  }
  for (; i < numItems; i++) {
    const qi = i * dimension;
    let s0 = 0,
      s1 = 0,
      s2 = 0,
      s3 = 0;
    for (let f = 0; f < dimension; f++) {
      const q = itemFactors[qi + f]!;
      s0 += userFactors[p0 + f]! * q;
      s1 += userFactors[p1 + f]! * q;
      s2 += userFactors[p2 + f]! * q;
      s3 += userFactors[p3 + f]! * q;
    }
    if (itemBias !== null) {
      const bias = itemBias[i]!;
      s0 += bias;
      s1 += bias;
      s2 += bias;
      s3 += bias;
    }
    rows[i] = s0;
    rows[r1 + i] = s1;
    rows[r2 + i] = s2;
    rows[r3 + i] = s3;
  }
}

/**
 * The exact pessimistic position of every relevant item, below the top list too:
 * `1 + #{non-relevant candidates scoring >= it} + #{relevant items before it}`.
 */
function writeFullRanks(
  row: Float64Array,
  relevant: Int32Array,
  excluded: Int32Array,
  isRelevant: Uint8Array,
  positions: Int32Array,
  positionOffset: number,
): void {
  const numItems = row.length;
  // position(r) = 1 + #{non-relevant c: s_c >= s_r} + #{relevant c before r}.
  const count = relevant.length;
  const order: number[] = [];
  for (let r = 0; r < count; r++) order.push(r);
  order.sort((a, b) =>
    before(row[relevant[a]!]!, 1, relevant[a]!, row[relevant[b]!]!, 1, relevant[b]!) ? -1 : 1,
  );
  const ascending = order.map((r) => row[relevant[r]!]!).reverse(); // scores, ascending
  const above = new Float64Array(count + 1);
  let nextExcluded = 0;
  for (let i = 0; i < numItems; i++) {
    if (nextExcluded < excluded.length && excluded[nextExcluded] === i) {
      nextExcluded++;
      continue;
    }
    if (isRelevant[i]) continue;
    // Number of relevant scores <= s: those relevant items have this candidate before them.
    const s = row[i]!;
    let lo = 0;
    let hi = count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ascending[mid]! <= s) lo = mid + 1;
      else hi = mid;
    }
    above[lo]!++;
  }
  // ascending[j] belongs to order[count - 1 - j]; non-relevant items above it: sum of above[m] for m > j.
  let running = 0;
  for (let j = count - 1; j >= 0; j--) {
    running += above[j + 1]!;
    const r = order[count - 1 - j]!;
    positions[positionOffset + r] = 1 + running + (count - 1 - j);
  }
}
