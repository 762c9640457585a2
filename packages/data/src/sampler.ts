import { DataError, IssueCollector } from './errors.js';
import type { InteractionMatrix } from './interaction-matrix.js';
import { Random } from './random.js';

const TWO_POW_32 = 4294967296;

/**
 * Uniform negative sampling for BPR: for user `u`, an item drawn uniformly from the
 * candidate items that are not among `u`'s training positives. By default the
 * candidates are the items with at least one training interaction, so a cold-start
 * test item is never sampled as a negative (the AMR code's leak guard).
 */
export class NegativeSampler {
  /** The training interactions whose positives are excluded. */
  readonly train: InteractionMatrix;
  /** Candidate item ids, ascending. */
  readonly candidates: Int32Array;
  private readonly identity: boolean;
  private readonly rejectBelow: number;

  /**
   * @param train - the training split.
   * @param candidates - candidate negatives (default: items with a training interaction).
   * @throws {@link DataError} when a user's positives cover every candidate.
   */
  constructor(train: InteractionMatrix, candidates?: Int32Array) {
    this.train = train;
    if (candidates === undefined) {
      const degrees = train.itemDegrees();
      const warm: number[] = [];
      for (let i = 0; i < degrees.length; i++) if (degrees[i]! > 0) warm.push(i);
      candidates = Int32Array.from(warm);
    } else {
      candidates = Int32Array.from(new Set(candidates)).sort();
      if (candidates.length > 0 && (candidates[0]! < 0 || candidates[candidates.length - 1]! >= train.numItems)) {
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
      for (let p = train.indptr[u]!; p < train.indptr[u + 1]!; p++) covered += isCandidate[train.indices[p]!]!;
      if (covered === candidates.length && train.degree(u) > 0) {
        throw new DataError(`user ${u} has every candidate item as a training positive: no negative can be sampled`);
      }
    }
  }

  /** One negative for user `u`, drawn from `random`. */
  sample(u: number, random: Random): number {
    const candidates = this.candidates;
    const n = candidates.length;
    const indices = this.train.indices;
    const rowStart = this.train.indptr[u]!;
    const rowEnd = this.train.indptr[u + 1]! - 1;
    for (;;) {
      // Lemire's exact bounded integer: multiply-shift with rejection of the biased low part.
      const m = random.nextUint32() * n;
      const hi = Math.floor(m / TWO_POW_32);
      if (m - hi * TWO_POW_32 < this.rejectBelow) continue;
      const j = this.identity ? hi : candidates[hi]!;
      let lo = rowStart;
      let top = rowEnd;
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
      if (!found) return j;
    }
  }
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
  private permutationEpoch = -1;
  private permutation: Int32Array | null = null;

  constructor(train: InteractionMatrix, options: TripleSamplerOptions = {}) {
    const issues = new IssueCollector();
    const seed = options.seed ?? 0;
    const batchSize = options.batchSize ?? 512;
    const order = options.order ?? 'shuffle';
    issues.integer('seed', seed, 0);
    issues.integer('batchSize', batchSize, 1);
    issues.oneOf('order', order, ['shuffle', 'with-replacement']);
    issues.throwIfAny();
    if (train.nnz === 0) throw new DataError('the training split has no interaction to sample from');
    this.train = train;
    this.seed = seed;
    this.batchSize = batchSize;
    this.order = order;
    this.negatives = new NegativeSampler(train, options.candidates);
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
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`epoch must be a non-negative integer, got ${epoch}`);
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
    const permutation = this.order === 'shuffle' ? this.permutationOf(epoch) : null;
    const entryUsers = this.entryUsers;
    const items = this.train.indices;
    const negativeSampler = this.negatives;
    for (let t = 0; t < size; t++) {
      const e = permutation !== null ? permutation[start + t]! : random.nextInt(n);
      const u = entryUsers[e]!;
      users[t] = u;
      positives[t] = items[e]!;
      negatives[t] = negativeSampler.sample(u, random);
    }
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

  /** The order in which training entries are visited in `epoch` (shuffle order), cached per epoch. */
  permutationOf(epoch: number): Int32Array {
    if (this.permutationEpoch !== epoch || this.permutation === null) {
      const n = this.train.nnz;
      const permutation = this.permutation ?? new Int32Array(n);
      for (let k = 0; k < n; k++) permutation[k] = k;
      Random.stream(this.seed, epoch).shuffle(permutation);
      this.permutation = permutation;
      this.permutationEpoch = epoch;
    }
    return this.permutation;
  }
}
