import { checkAllocation } from './memory.js';
import { IssueCollector } from './errors.js';
import { IdMap } from './id-map.js';
import type { InteractionLog } from './interaction-log.js';
import { Random } from './random.js';

/** Options of {@link generateSynthetic}. */
export interface SyntheticOptions {
  /** Users (default 1,000). */
  readonly users?: number;
  /** Items (default 800). */
  readonly items?: number;
  /** Rank of the planted preferences (default 8). */
  readonly rank?: number;
  /** Mean interactions per user (default 30); each user gets at least `minPerUser`. */
  readonly meanPerUser?: number;
  /** Minimum interactions per user (default 5). */
  readonly minPerUser?: number;
  /** Scale of the planted user-item affinity relative to the Gumbel noise (default 3: a strong signal). */
  readonly signal?: number;
  /** Spread of the item popularity bias (default 1). */
  readonly popularity?: number;
  /** Item feature dimension; 0 (default) for no features. */
  readonly featureDimension?: number;
  /** Standard deviation of the noise added to the features (default 0.1). */
  readonly featureNoise?: number;
  /** Seed (default 0). */
  readonly seed?: number;
}

/** The result of {@link generateSynthetic}: a log plus the planted truth it was drawn from. */
export interface SyntheticData {
  /** Interactions with timestamps (each user's in a random order); source ids `u0..`, `i0..`. */
  readonly log: InteractionLog;
  /** Planted user factors, `users x rank`. */
  readonly userFactors: Float32Array;
  /** Planted item factors, `items x rank`. */
  readonly itemFactors: Float32Array;
  /** Planted item popularity bias, length `items`. */
  readonly itemBias: Float32Array;
  /** Item features `items x featureDimension` (a noisy linear image of the item factors), or `null`. */
  readonly itemFeatures: Float32Array | null;
  readonly rank: number;
  readonly featureDimension: number;
}

/**
 * Generates implicit feedback with planted low-rank preferences: user and item factors
 * are Gaussian, each user picks its items without replacement with probability growing
 * with `signal * p_u . q_i + bias_i` (Gumbel top-k), and timestamps follow a random order
 * per user. Optional item features are `W q_i + noise`, so they carry the signal an
 * image-aware model (VBPR) can use. Seeded: the same options give the same data.
 */
export function generateSynthetic(options: SyntheticOptions = {}): SyntheticData {
  const numUsers = options.users ?? 1000;
  const numItems = options.items ?? 800;
  const rank = options.rank ?? 8;
  const meanPerUser = options.meanPerUser ?? 30;
  const minPerUser = options.minPerUser ?? 5;
  const signal = options.signal ?? 3;
  const popularity = options.popularity ?? 1;
  const featureDimension = options.featureDimension ?? 0;
  const featureNoise = options.featureNoise ?? 0.1;
  const seed = options.seed ?? 0;
  const issues = new IssueCollector();
  issues.integer('users', numUsers, 1);
  issues.integer('items', numItems, 2);
  issues.integer('rank', rank, 1);
  issues.integer('minPerUser', minPerUser, 1, numItems - 1);
  issues.number('meanPerUser', meanPerUser, minPerUser, numItems - 1);
  issues.number('signal', signal, 0, 1e6);
  issues.number('popularity', popularity, 0, 1e6);
  issues.integer('featureDimension', featureDimension, 0);
  issues.number('featureNoise', featureNoise, 0, 1e6);
  issues.integer('seed', seed, 0);
  issues.throwIfAny();
  // Sizes typed by mistake (1e9 users) are refused by size before anything is allocated.
  checkAllocation('items', `${numItems} items x rank ${rank} factors`, numItems * rank, 4);
  checkAllocation('users', `${numUsers} users x rank ${rank} factors`, numUsers * rank, 4);
  checkAllocation(
    'users',
    `about ${Math.round(numUsers * meanPerUser)} interactions (users x meanPerUser)`,
    numUsers * meanPerUser,
    3 * 8,
  );

  const random = new Random(seed);
  const scale = 1 / Math.sqrt(rank);
  const userFactors = Float32Array.from(
    { length: numUsers * rank },
    () => random.nextGaussian() * scale,
  );
  const itemFactors = Float32Array.from(
    { length: numItems * rank },
    () => random.nextGaussian() * scale,
  );
  const itemBias = Float32Array.from(
    { length: numItems },
    () => random.nextGaussian() * popularity,
  );

  const users: number[] = [];
  const items: number[] = [];
  const timestamps: number[] = [];
  const keys = new Float64Array(numItems);
  const order = new Int32Array(numItems);
  let clock = 1_600_000_000;
  for (let u = 0; u < numUsers; u++) {
    const userRandom = Random.stream(seed, 7, u);
    // Geometric-like count around the mean, at least minPerUser, at most half the catalogue.
    const extra = -Math.log(1 - userRandom.nextFloat()) * (meanPerUser - minPerUser);
    const count = Math.min(Math.floor(numItems / 2), minPerUser + Math.floor(extra));
    for (let i = 0; i < numItems; i++) {
      let dot = 0;
      for (let f = 0; f < rank; f++) dot += userFactors[u * rank + f]! * itemFactors[i * rank + f]!;
      let g = 0;
      while (g === 0) g = userRandom.nextFloat();
      keys[i] = signal * dot * Math.sqrt(rank) + itemBias[i]! - Math.log(-Math.log(g));
      order[i] = i;
    }
    order.sort((a, b) => keys[b]! - keys[a]! || a - b);
    const chosen = Array.from(order.subarray(0, count));
    userRandom.shuffle(chosen);
    for (const i of chosen) {
      users.push(u);
      items.push(i);
      clock += 1 + userRandom.nextInt(3600);
      timestamps.push(clock);
    }
  }

  let itemFeatures: Float32Array | null = null;
  if (featureDimension > 0) {
    const projection = Float32Array.from({ length: featureDimension * rank }, () =>
      random.nextGaussian(),
    );
    itemFeatures = new Float32Array(numItems * featureDimension);
    for (let i = 0; i < numItems; i++) {
      for (let d = 0; d < featureDimension; d++) {
        let v = 0;
        for (let f = 0; f < rank; f++) v += projection[d * rank + f]! * itemFactors[i * rank + f]!;
        itemFeatures[i * featureDimension + d] = v + random.nextGaussian() * featureNoise;
      }
    }
  }

  const log: InteractionLog = {
    source: `synthetic(users=${numUsers}, items=${numItems}, rank=${rank}, seed=${seed})`,
    userIdMap: IdMap.inOrder(Array.from({ length: numUsers }, (_, u) => `u${u}`)),
    itemIdMap: IdMap.inOrder(Array.from({ length: numItems }, (_, i) => `i${i}`)),
    users: Int32Array.from(users),
    items: Int32Array.from(items),
    ratings: null,
    timestamps: Float64Array.from(timestamps),
    length: users.length,
  };
  return { log, userFactors, itemFactors, itemBias, itemFeatures, rank, featureDimension };
}
