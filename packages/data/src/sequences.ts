import { ConfigError, DataError } from './errors.js';
import type { InteractionLog } from './interaction-log.js';
import type { IdMap } from './id-map.js';
import { Random } from './random.js';

/**
 * Each user's items in time order (oldest first), for sequential recommenders (SASRec,
 * GRU4Rec). Dense ids as in the {@link InteractionLog} they come from.
 */
export interface UserSequences {
  /** Where the sequences came from. */
  readonly source: string;
  readonly numUsers: number;
  readonly numItems: number;
  /** `sequences[u]`: user u's items, oldest first (empty for a user without interactions). */
  readonly sequences: readonly Int32Array[];
  /** The users' and items' source ids, when the sequences came from a file. */
  readonly userIdMap?: IdMap;
  readonly itemIdMap?: IdMap;
}

/**
 * Orders a log into per-user sequences: by timestamp when the log has them (ties keep file
 * order), else in file order (the convention of the SASRec repository's files, whose lines
 * are in time order per user).
 */
export function sequencesFromLog(log: InteractionLog): UserSequences {
  const numUsers = log.userIdMap.size;
  const counts = new Int32Array(numUsers);
  for (let t = 0; t < log.length; t++) counts[log.users[t]!]!++;
  const order = new Int32Array(log.length);
  for (let t = 0; t < log.length; t++) order[t] = t;
  const stamps = log.timestamps;
  const sorted = stamps
    ? Array.from(order).sort((a, b) => stamps[a]! - stamps[b]! || a - b)
    : order;
  const sequences = Array.from({ length: numUsers }, (_, u) => new Int32Array(counts[u]!));
  const filled = new Int32Array(numUsers);
  for (const t of sorted) {
    const u = log.users[t]!;
    sequences[u]![filled[u]!++] = log.items[t]!;
  }
  return {
    source: log.source,
    numUsers,
    numItems: log.itemIdMap.size,
    sequences,
    userIdMap: log.userIdMap,
    itemIdMap: log.itemIdMap,
  };
}

/**
 * The SASRec paper's split: for each user the last item is the test item, the one before it
 * the validation item, the rest is training. Users with fewer than 3 items keep them all in
 * training and have no validation or test item (`-1`), as in the paper's code.
 */
export interface SequenceSplit {
  readonly source: string;
  readonly numUsers: number;
  readonly numItems: number;
  /** Training prefix of each user's sequence. */
  readonly train: readonly Int32Array[];
  /** Validation item per user, `-1` when none. */
  readonly validation: Int32Array;
  /** Test item per user, `-1` when none. */
  readonly test: Int32Array;
  /** The users' and items' source ids, when the sequences came from a file. */
  readonly userIdMap?: IdMap;
  readonly itemIdMap?: IdMap;
}

/** Splits sequences by time: last item test, second-to-last validation (SASRec's protocol). */
export function leaveLastOut(sequences: UserSequences): SequenceSplit {
  const { numUsers } = sequences;
  const validation = new Int32Array(numUsers).fill(-1);
  const test = new Int32Array(numUsers).fill(-1);
  const train = sequences.sequences.map((seq, u) => {
    if (seq.length < 3) return seq.slice();
    validation[u] = seq[seq.length - 2]!;
    test[u] = seq[seq.length - 1]!;
    return seq.slice(0, seq.length - 2);
  });
  return {
    source: sequences.source,
    numUsers,
    numItems: sequences.numItems,
    train,
    validation,
    test,
    ...(sequences.userIdMap ? { userIdMap: sequences.userIdMap } : {}),
    ...(sequences.itemIdMap ? { itemIdMap: sequences.itemIdMap } : {}),
  };
}

/**
 * A mini-batch of training sequences, left-padded to a common `length` (at most the model's
 * `maxLength`): row b, position t holds `inputs[b * length + t]`, `-1` for padding. The
 * target of position t is the next item `positives[...]` (`-1` where there is none, which
 * is exactly where the input is padding) and `negatives[...]` an item the user never
 * interacted with in training. Positions are right-aligned: position t of the batch is
 * position `maxLength - length + t` of the model, so a short batch gives the same outputs
 * as the same sequences padded to `maxLength` (the causal and padding masks make padded
 * keys invisible).
 */
export interface SequenceBatch {
  /** Number of sequences (rows). */
  readonly size: number;
  /** Padded length of every row (`<= maxLength`). */
  readonly length: number;
  /** The model's maximum length, for right-aligned positions. */
  readonly maxLength: number;
  /** The user of each row. */
  readonly users: Int32Array;
  /** `size x length` input items, `-1` = padding. */
  readonly inputs: Int32Array;
  /** `size x length` next items (targets), `-1` = no target. */
  readonly positives: Int32Array;
  /** `size x length` sampled negatives, `-1` = no target. */
  readonly negatives: Int32Array;
  /** Number of positions with a target. */
  readonly targets: number;
}

/** Options of {@link SequenceBatchSampler}. */
export interface SequenceBatchSamplerOptions {
  /** Sequences per batch (SASRec: 128). */
  readonly batchSize: number;
  /** Longest input kept, the most recent items (SASRec on Games: 50). */
  readonly maxLength: number;
  readonly seed: number;
  /**
   * Group sequences of similar length into the same batch and cut each batch to its longest
   * row (default true). The outputs are the same as padding to `maxLength` (right-aligned
   * positions, masked padding); only which users share a batch changes. On Amazon Games
   * (mean training length 7 of at most 50) this makes an epoch several times cheaper.
   */
  readonly bucketByLength?: boolean;
}

/**
 * Samples SASRec's training batches: each user with at least 2 training items appears once
 * per epoch, in a seeded order; input = the training sequence without its last item (the
 * most recent `maxLength`), targets = the next items, one uniform negative per position
 * outside the user's training items.
 */
export class SequenceBatchSampler {
  readonly batchSize: number;
  readonly maxLength: number;
  readonly bucketByLength: boolean;
  /** Users that contribute batches (at least 2 training items). */
  readonly users: Int32Array;
  private readonly seen: readonly Set<number>[];
  private readonly seed: number;

  constructor(
    readonly split: Pick<SequenceSplit, 'train' | 'numItems' | 'source'>,
    options: SequenceBatchSamplerOptions,
  ) {
    const issues = [];
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1)
      issues.push({
        path: 'batchSize',
        message: `must be a positive integer, got ${options.batchSize}`,
      });
    if (!Number.isInteger(options.maxLength) || options.maxLength < 1)
      issues.push({
        path: 'maxLength',
        message: `must be a positive integer, got ${options.maxLength}`,
      });
    if (issues.length > 0) throw new ConfigError(issues);
    this.batchSize = options.batchSize;
    this.maxLength = options.maxLength;
    this.bucketByLength = options.bucketByLength ?? true;
    this.seed = options.seed;
    const users: number[] = [];
    split.train.forEach((seq, u) => {
      if (seq.length >= 2) users.push(u);
    });
    if (users.length === 0)
      throw new DataError(
        `${split.source}: no user has 2 or more training items to learn a next item from`,
      );
    if (split.numItems < 2)
      throw new DataError(`${split.source}: at least 2 items are needed to sample negatives`);
    this.users = Int32Array.from(users);
    this.seen = split.train.map((seq) => new Set(seq));
  }

  /** Batches per epoch. */
  get batchesPerEpoch(): number {
    return Math.ceil(this.users.length / this.batchSize);
  }

  /** Positions with a target per epoch (every epoch has the same), over its batches. */
  get meanTargetsPerBatch(): number {
    let targets = 0;
    for (const u of this.users)
      targets += Math.min(this.split.train[u]!.length - 1, this.maxLength);
    return targets / this.batchesPerEpoch;
  }

  /** The batches of one epoch (deterministic for `(seed, epoch)`). */
  epoch(epoch: number): SequenceBatch[] {
    const random = Random.stream(this.seed, 0x5e9, epoch);
    const order = Array.from(this.users);
    for (let i = order.length - 1; i > 0; i--) {
      const j = random.nextInt(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const length = (u: number): number => Math.min(this.split.train[u]!.length - 1, this.maxLength);
    const groups: number[][] = [];
    if (this.bucketByLength) {
      // Sort windows of 50 batches by length, then cut: batches of similar lengths, each
      // user once, and the order of the batches shuffled again.
      const window = this.batchSize * 50;
      for (let start = 0; start < order.length; start += window) {
        const chunk = order.slice(start, start + window).sort((a, b) => length(a) - length(b));
        for (let s = 0; s < chunk.length; s += this.batchSize)
          groups.push(chunk.slice(s, s + this.batchSize));
      }
      for (let i = groups.length - 1; i > 0; i--) {
        const j = random.nextInt(i + 1);
        [groups[i], groups[j]] = [groups[j]!, groups[i]!];
      }
    } else {
      for (let s = 0; s < order.length; s += this.batchSize)
        groups.push(order.slice(s, s + this.batchSize));
    }
    return groups.map((group) => this.batch(group, random));
  }

  private batch(group: readonly number[], random: Random): SequenceBatch {
    const L = this.bucketByLength
      ? Math.max(...group.map((u) => Math.min(this.split.train[u]!.length - 1, this.maxLength)))
      : this.maxLength;
    const size = group.length;
    const inputs = new Int32Array(size * L).fill(-1);
    const positives = new Int32Array(size * L).fill(-1);
    const negatives = new Int32Array(size * L).fill(-1);
    let targets = 0;
    const numItems = this.split.numItems;
    group.forEach((u, b) => {
      const seq = this.split.train[u]!;
      const seen = this.seen[u]!;
      const n = Math.min(seq.length - 1, L);
      for (let k = 0; k < n; k++) {
        const t = b * L + L - n + k;
        const s = seq.length - 1 - n + k;
        inputs[t] = seq[s]!;
        positives[t] = seq[s + 1]!;
        let negative = random.nextInt(numItems);
        for (let tries = 0; seen.has(negative) && tries < 1000; tries++)
          negative = random.nextInt(numItems);
        negatives[t] = negative;
        targets++;
      }
    });
    return {
      size,
      length: L,
      maxLength: this.maxLength,
      users: Int32Array.from(group),
      inputs,
      positives,
      negatives,
      targets,
    };
  }
}

/**
 * The last `maxLength` items of a history as one left-padded row (`-1` = padding), for
 * scoring the next item.
 */
export function padHistory(history: Int32Array, maxLength: number): Int32Array {
  const row = new Int32Array(maxLength).fill(-1);
  const n = Math.min(history.length, maxLength);
  row.set(history.subarray(history.length - n), maxLength - n);
  return row;
}

/**
 * SASRec's evaluation candidates: for each user with a target, the target item first, then
 * `negatives` items sampled uniformly (with replacement, as in the paper's code) among the
 * items outside the user's whole sequence (`exclude`). Rows of users without a target are
 * `-1`. Returns `numUsers x (1 + negatives)`.
 */
export function sampleSequenceCandidates(
  targets: Int32Array,
  exclude: readonly (readonly number[] | Int32Array)[],
  numItems: number,
  negatives: number,
  seed: number,
): Int32Array {
  // Drawn with replacement as in SASRec's code; more draws than there are other items would
  // make the protocol meaningless rather than harder.
  if (!(Number.isInteger(negatives) && negatives >= 1 && negatives < numItems))
    throw new ConfigError([
      {
        path: 'negatives',
        message: `must be an integer from 1 to ${numItems - 1} (the data has ${numItems} items), got ${negatives}`,
      },
    ]);
  const width = 1 + negatives;
  const out = new Int32Array(targets.length * width).fill(-1);
  const random = Random.stream(seed, 0xca4d);
  for (let u = 0; u < targets.length; u++) {
    if (targets[u]! < 0) continue;
    const excluded = new Set(exclude[u]);
    excluded.add(targets[u]!);
    if (excluded.size >= numItems)
      throw new DataError(`user ${u} has interacted with every item: no negatives to sample`);
    out[u * width] = targets[u]!;
    for (let k = 1; k < width; k++) {
      let item = random.nextInt(numItems);
      while (excluded.has(item)) item = random.nextInt(numItems);
      out[u * width + k] = item;
    }
  }
  return out;
}

/**
 * A synthetic sequence set with a planted next-item rule, for tests and plugin authors:
 * each user walks the cycle `0 -> 1 -> ... -> numItems - 1 -> 0` from a seeded random start
 * for `minLength..maxLength` steps, split by {@link leaveLastOut}. A sequential model that
 * learns the rule ranks every test target first.
 */
export function generateCycleSequences(options: {
  readonly numUsers: number;
  readonly numItems: number;
  readonly seed: number;
  readonly minLength?: number;
  readonly maxLength?: number;
}): SequenceSplit {
  const random = new Random(options.seed);
  const min = options.minLength ?? 5;
  const max = options.maxLength ?? 8;
  const sequences = Array.from({ length: options.numUsers }, () => {
    const start = random.nextInt(options.numItems);
    const n = min + random.nextInt(max - min + 1);
    return Int32Array.from({ length: n }, (_, k) => (start + k) % options.numItems);
  });
  return leaveLastOut({
    source: `cycle(${options.numUsers} users, ${options.numItems} items)`,
    numUsers: options.numUsers,
    numItems: options.numItems,
    sequences,
  });
}
