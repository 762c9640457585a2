import type { IdMap } from './id-map.js';
import { DataError, IssueCollector } from './errors.js';
import type { InteractionMatrix } from './interaction-matrix.js';
import { Random } from './random.js';

const TWO_POW_32 = 4294967296;

/**
 * Uniform negative sampling for BPR: for user `u`, an item drawn uniformly from the
 * candidate items that are not among `u`'s training positives. By default the
 * candidates are the items with at least one training interaction, so a cold-start
 * test item is never sampled as a negative (the AMR code's leak guard).
 *
 * Draws are rejection sampling, exact: a candidate is drawn uniformly (Lemire's
 * multiply-shift with rejection, no modulo bias) and redrawn while it is a positive.
 * Membership is first checked against a one-hash Bloom filter of all (user, item)
 * training pairs that fits in the L2 cache (about 8 bits per pair); only when the filter
 * says "maybe" is the user's sorted row binary-searched. This keeps sampling far faster
 * than training on data the size of Gowalla.
 */
export class NegativeSampler {
  /** The training interactions whose positives are excluded. */
  readonly train: InteractionMatrix;
  /** Candidate item ids, ascending. */
  readonly candidates: Int32Array;
  /** @internal */
  readonly identity: boolean;
  /** @internal */
  readonly rejectBelow: number;
  /** @internal Bloom filter bits over hash(user, item). */
  readonly filter: Int32Array;
  /** @internal Right shift that turns a 32-bit hash into a filter bit index. */
  readonly filterShift: number;

  /**
   * @param train - the training split.
   * @param candidates - candidate negatives (default: items with a training interaction).
   * @throws {@link DataError} when a user's positives cover every candidate.
   */
  constructor(train: InteractionMatrix, candidates?: Int32Array, userIds?: IdMap) {
    this.train = train;
    if (candidates === undefined) {
      const degrees = train.itemDegrees();
      const warm: number[] = [];
      for (let i = 0; i < degrees.length; i++) if (degrees[i]! > 0) warm.push(i);
      candidates = Int32Array.from(warm);
    } else {
      candidates = Int32Array.from(new Set(candidates)).sort();
      if (
        candidates.length > 0 &&
        (candidates[0]! < 0 || candidates[candidates.length - 1]! >= train.numItems)
      ) {
        throw new DataError(`negative candidates must be item ids in [0, ${train.numItems})`);
      }
    }
    if (candidates.length === 0) throw new DataError('no candidate negative items');
    this.candidates = candidates;
    this.identity = candidates.length === train.numItems;
    this.rejectBelow = (TWO_POW_32 - candidates.length) % candidates.length;
    const isCandidate = new Uint8Array(train.numItems);
    for (const i of candidates) isCandidate[i] = 1;
    for (let u = 0; u < train.numUsers; u++) {
      let covered = 0;
      for (let p = train.indptr[u]!; p < train.indptr[u + 1]!; p++)
        covered += isCandidate[train.indices[p]!]!;
      if (covered === candidates.length && train.degree(u) > 0) {
        const who = userIds
          ? `user ${JSON.stringify(userIds.toSource(u))}`
          : `user ${u} (dense id)`;
        throw new DataError(
          `${who} has every one of the ${candidates.length} candidate items as a training positive: no negative can be sampled (drop such users, e.g. with a maximum-count filter, or add items)`,
        );
      }
    }
    const bits = Math.min(26, Math.max(16, Math.ceil(Math.log2(Math.max(1, train.nnz) * 8))));
    this.filterShift = 32 - bits;
    this.filter = new Int32Array(1 << (bits - 5));
    for (let u = 0; u < train.numUsers; u++) {
      for (let p = train.indptr[u]!; p < train.indptr[u + 1]!; p++) {
        const h = pairHash(u, train.indices[p]!) >>> this.filterShift;
        this.filter[h >>> 5]! |= 1 << (h & 31);
      }
    }
  }

  /** True when `j` is a training positive of `u` (exact). */
  isPositive(u: number, j: number): boolean {
    const h = pairHash(u, j) >>> this.filterShift;
    if ((this.filter[h >>> 5]! & (1 << (h & 31))) === 0) return false;
    return this.train.has(u, j);
  }

  /** One negative for user `u`, drawn from `random` (the same draws as `TripleSampler`'s inlined loop). */
  sample(u: number, random: Random): number {
    const n = this.candidates.length;
    for (;;) {
      const m = random.nextUint32() * n;
      const hi = Math.floor(m / TWO_POW_32);
      if (m - hi * TWO_POW_32 < this.rejectBelow) continue;
      const j = this.identity ? hi : this.candidates[hi]!;
      if (!this.isPositive(u, j)) return j;
    }
  }

  /**
   * Fills `negatives[t]` with a negative for `users[t]`, `t < size`: the same draws as
   * `size` calls of {@link sample}, with the generator inlined (about 3x faster).
   */
  fill(users: Int32Array, negatives: Int32Array, size: number, random: Random): void {
    let [a, b, c, d] = random.getState();
    const n = this.candidates.length;
    const candidates = this.candidates;
    const identity = this.identity;
    const rejectBelow = this.rejectBelow;
    const filter = this.filter;
    const shift = this.filterShift;
    const indptr = this.train.indptr;
    const indices = this.train.indices;
    for (let t = 0; t < size; t++) {
      const u = users[t]!;
      for (;;) {
        // xoshiro128** step, as Random.nextUint32.
        const b5 = Math.imul(b, 5);
        const r = Math.imul((b5 << 7) | (b5 >>> 25), 9) >>> 0;
        const s = b << 9;
        c ^= a;
        d ^= b;
        b ^= c;
        a ^= d;
        c ^= s;
        d = (d << 11) | (d >>> 21);
        const m = r * n;
        const hi = Math.floor(m / TWO_POW_32);
        if (m - hi * TWO_POW_32 < rejectBelow) continue;
        const j = identity ? hi : candidates[hi]!;
        const h = pairHash(u, j) >>> shift;
        if ((filter[h >>> 5]! & (1 << (h & 31))) !== 0) {
          let lo = indptr[u]!;
          let top = indptr[u + 1]! - 1;
          let found = false;
          while (lo <= top) {
            const mid = (lo + top) >>> 1;
            const v = indices[mid]!;
            if (v < j) lo = mid + 1;
            else if (v > j) top = mid - 1;
            else {
              found = true;
              break;
            }
          }
          if (found) continue;
        }
        negatives[t] = j;
        break;
      }
    }
    random.setState([a, b, c, d]);
  }
}

/** A 32-bit hash of a (user, item) pair for the membership filter. */
function pairHash(u: number, j: number): number {
  let x = (Math.imul(u ^ 0x5bd1e995, 0x9e3779b1) + j) | 0;
  x = Math.imul(x ^ (x >>> 15), 0x85ebca77);
  return (x ^ (x >>> 13)) >>> 0;
}

/** A mini-batch of BPR triples (u, i, j): `users[t]` prefers `positives[t]` over `negatives[t]`. */
export interface TripleBatch {
  /** Epoch the batch belongs to. */
  readonly epoch: number;
  /** Index of the batch within its epoch. */
  readonly index: number;
  /** Number of triples in the batch (the last batch of an epoch may be short). */
  readonly size: number;
  readonly users: Int32Array;
  readonly positives: Int32Array;
  readonly negatives: Int32Array;
}

/** Options of {@link TripleSampler}. */
export interface TripleSamplerOptions {
  /** Seed (default 0). */
  readonly seed?: number;
  /** Triples per batch (default 512, as both papers). */
  readonly batchSize?: number;
  /**
   * `shuffle` (default): every training interaction is the positive of exactly one triple
   * per epoch, in an order shuffled per epoch (the APR and AMR code). `with-replacement`:
   * positives are drawn uniformly with replacement (Cornac, implicit); no per-epoch state.
   */
  readonly order?: 'shuffle' | 'with-replacement';
  /** Candidate negatives (default: items with a training interaction). */
  readonly candidates?: Int32Array;
  /** Source user ids, to name a user in errors (e.g. `dataset.userIdMap`). */
  readonly userIds?: IdMap;
}

/**
 * Yields BPR triples in batches. One epoch = as many triples as training interactions.
 * Batch `b` of epoch `e` is a pure function of `(seed, e, b)`: its negatives come from
 * the stream `Random.stream(seed, e, b)` and (in `shuffle` order) its positives from a
 * per-epoch permutation seeded by `(seed, e)`. So any number of consumers (worker
 * threads, each with its own sampler) that split the batches among themselves see
 * exactly the batches a single consumer would.
 */
export class TripleSampler {
  readonly train: InteractionMatrix;
  readonly negatives: NegativeSampler;
  readonly seed: number;
  readonly batchSize: number;
  readonly order: 'shuffle' | 'with-replacement';
  private readonly entryUsers: Int32Array;
  private shuffledEpoch = -1;
  /** (user, item) pairs of the training entries in the shuffled order of `shuffledEpoch`. */
  private shuffledPairs: Int32Array | null = null;

  constructor(train: InteractionMatrix, options: TripleSamplerOptions = {}) {
    const issues = new IssueCollector();
    const seed = options.seed ?? 0;
    const batchSize = options.batchSize ?? 512;
    const order = options.order ?? 'shuffle';
    issues.integer('seed', seed, 0);
    issues.integer('batchSize', batchSize, 1);
    issues.oneOf('order', order, ['shuffle', 'with-replacement']);
    issues.throwIfAny();
    if (train.nnz === 0)
      throw new DataError('the training split has no interaction to sample from');
    this.train = train;
    this.seed = seed;
    this.batchSize = batchSize;
    this.order = order;
    this.negatives = new NegativeSampler(train, options.candidates, options.userIds);
    this.entryUsers = train.entryUsers();
  }

  /** Triples per epoch (= training interactions). */
  get triplesPerEpoch(): number {
    return this.train.nnz;
  }

  /** Batches per epoch (the last may be short). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.train.nnz / this.batchSize);
  }

  /** Allocates a batch buffer of `batchSize` triples, for {@link batch}'s `out`. */
  allocate(): { users: Int32Array; positives: Int32Array; negatives: Int32Array } {
    return {
      users: new Int32Array(this.batchSize),
      positives: new Int32Array(this.batchSize),
      negatives: new Int32Array(this.batchSize),
    };
  }

  /**
   * Batch `index` of `epoch`. When `out` is given its arrays are filled (and returned as
   * views of the batch's size); otherwise new arrays are allocated.
   */
  batch(
    epoch: number,
    index: number,
    out?: { users: Int32Array; positives: Int32Array; negatives: Int32Array },
  ): TripleBatch {
    if (!Number.isSafeInteger(epoch) || epoch < 0)
      throw new RangeError(`epoch must be a non-negative integer, got ${epoch}`);
    if (!Number.isInteger(index) || index < 0 || index >= this.batchesPerEpoch) {
      throw new RangeError(`batch index ${index} is outside [0, ${this.batchesPerEpoch})`);
    }
    const n = this.train.nnz;
    const start = index * this.batchSize;
    const size = Math.min(this.batchSize, n - start);
    const buffers = out ?? this.allocate();
    const users = buffers.users;
    const positives = buffers.positives;
    const negatives = buffers.negatives;
    const random = Random.stream(this.seed, epoch, index);
    if (this.order === 'shuffle') {
      // The epoch's pairs are already in shuffled order: a sequential read.
      const pairs = this.shuffledPairsOf(epoch);
      for (let t = 0, p = 2 * start; t < size; t++, p += 2) {
        users[t] = pairs[p]!;
        positives[t] = pairs[p + 1]!;
      }
    } else {
      const entryUsers = this.entryUsers;
      const items = this.train.indices;
      for (let t = 0; t < size; t++) {
        const e = random.nextInt(n);
        users[t] = entryUsers[e]!;
        positives[t] = items[e]!;
      }
    }
    this.negatives.fill(users, negatives, size, random);
    return {
      epoch,
      index,
      size,
      users: size === users.length ? users : users.subarray(0, size),
      positives: size === positives.length ? positives : positives.subarray(0, size),
      negatives: size === negatives.length ? negatives : negatives.subarray(0, size),
    };
  }

  /** Every batch of an epoch, in order, each in freshly allocated arrays. */
  *epoch(epoch: number): IterableIterator<TripleBatch> {
    for (let b = 0; b < this.batchesPerEpoch; b++) yield this.batch(epoch, b);
  }

  /**
   * The training (user, item) pairs in the order `epoch` visits them (shuffle order):
   * `[u0, i0, u1, i1, ...]`, cached for the latest epoch asked. A uniformly random
   * permutation drawn from the stream `(seed, epoch)` alone, by the Rao-Sandelius method:
   * each pair goes to one of K buckets uniformly at random (one sequential pass), then each
   * bucket, small enough for the L2 cache, gets a Fisher-Yates shuffle. Same law as one
   * Fisher-Yates over the whole array, without its cache misses.
   */
  shuffledPairsOf(epoch: number): Int32Array {
    if (this.shuffledEpoch !== epoch || this.shuffledPairs === null) {
      const n = this.train.nnz;
      const pairs = this.shuffledPairs ?? new Int32Array(2 * n);
      const entryUsers = this.entryUsers;
      const items = this.train.indices;
      const random = Random.stream(this.seed, epoch);
      const bucketBits = Math.min(10, Math.max(0, Math.ceil(Math.log2(n / 4096))));
      const buckets = 1 << bucketBits;
      const bucketOf = new Uint16Array(n);
      const cursor = new Int32Array(buckets + 1);
      if (bucketBits > 0) {
        // Each 32-bit draw gives floor(32 / bucketBits) independent uniform bucket ids.
        const perDraw = Math.floor(32 / bucketBits);
        const mask = buckets - 1;
        for (let e = 0; e < n;) {
          let r = random.nextUint32();
          for (let k = 0; k < perDraw && e < n; k++, e++) {
            const b = r & mask;
            r >>>= bucketBits;
            bucketOf[e] = b;
            cursor[b + 1]!++;
          }
        }
      } else {
        cursor[1] = n;
      }
      for (let b = 0; b < buckets; b++) cursor[b + 1]! += cursor[b]!;
      const starts = cursor.slice();
      for (let e = 0; e < n; e++) {
        const at = 2 * cursor[bucketOf[e]!]!++;
        pairs[at] = entryUsers[e]!;
        pairs[at + 1] = items[e]!;
      }
      // Fisher-Yates inside each bucket, with the generator inlined (as Random.nextInt).
      let [sa, sb, sc, sd] = random.getState();
      for (let b = 0; b < buckets; b++) {
        const first = starts[b]!;
        for (let k = starts[b + 1]! - 1; k > first; k--) {
          const bound = k - first + 1;
          let j = 0;
          for (;;) {
            const b5 = Math.imul(sb, 5);
            const r = Math.imul((b5 << 7) | (b5 >>> 25), 9) >>> 0;
            const t = sb << 9;
            sc ^= sa;
            sd ^= sb;
            sb ^= sc;
            sa ^= sd;
            sc ^= t;
            sd = (sd << 11) | (sd >>> 21);
            const m = r * bound;
            j = Math.floor(m / TWO_POW_32);
            const low = m - j * TWO_POW_32;
            if (low >= bound || low >= (TWO_POW_32 - bound) % bound) break;
          }
          j += first;
          const u = pairs[2 * k]!;
          const i = pairs[2 * k + 1]!;
          pairs[2 * k] = pairs[2 * j]!;
          pairs[2 * k + 1] = pairs[2 * j + 1]!;
          pairs[2 * j] = u;
          pairs[2 * j + 1] = i;
        }
      }
      random.setState([sa, sb, sc, sd]);
      this.shuffledPairs = pairs;
      this.shuffledEpoch = epoch;
    }
    return this.shuffledPairs;
  }
}
