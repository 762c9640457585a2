import { EvaluationError } from './errors.js';

/**
 * The scoring part of the Model contract, all the evaluator needs. Any model (built-in,
 * plugin, or a wrapper around a remote service) that can score a block of users against
 * every item can be evaluated.
 */
export interface Scorer {
  readonly numUsers: number;
  readonly numItems: number;
  /**
   * Scores of every item for each user of the block, row-major `users.length x numItems`.
   * May write into and return `out` when given (its length is `users.length * numItems`).
   */
  scoreAll(users: Int32Array, out?: Float64Array): Float64Array | Promise<Float64Array>;
  /** Scores of (users[t], items[t]) pairs. */
  score(users: Int32Array, items: Int32Array): Float64Array | Promise<Float64Array>;
}

/** Dense factors of a model whose score is `userFactors[u] . itemFactors[i] + itemBias[i]`. */
export interface ScoringFactors {
  /** `numUsers x dimension`, row-major. */
  readonly userFactors: Float32Array;
  /** `numItems x dimension`, row-major. */
  readonly itemFactors: Float32Array;
  readonly dimension: number;
  /** Optional per-item additive term (ItemPop's popularity, a visual bias), length `numItems`. */
  readonly itemBias?: Float32Array | undefined;
}

/**
 * A scorer whose scores are inner products (MF: `p_u . q_i`; VBPR and AMR: `p_u . (q_i + E c_i)`
 * with the item side precomputed; ItemPop: a bias only). The evaluator can then rank all
 * users with dense matrix products (onnxruntime or worker threads) instead of calling
 * `scoreAll` block by block.
 *
 * Its scores must equal {@link dotScore} exactly (float64 sum over the dimension in order,
 * then the bias): that is the number the evaluator ranks by.
 */
export interface FactorizedScorer extends Scorer {
  factors(): ScoringFactors;
}

/** True when the scorer exposes dense factors. */
export function isFactorized(scorer: Scorer): scorer is FactorizedScorer {
  return typeof (scorer as Partial<FactorizedScorer>).factors === 'function';
}

/**
 * The canonical inner-product score: `sum_f p[u,f] * q[i,f]` accumulated in float64 in
 * order `f = 0..K-1`, plus `bias[i]`. Every evaluation path ranks by this number.
 */
export function dotScore(factors: ScoringFactors, u: number, i: number): number {
  const { userFactors, itemFactors, dimension: k, itemBias } = factors;
  let s = 0;
  const pu = u * k;
  const qi = i * k;
  for (let f = 0; f < k; f++) s += userFactors[pu + f]! * itemFactors[qi + f]!;
  return itemBias ? s + itemBias[i]! : s;
}

/**
 * Wraps dense factors as a {@link FactorizedScorer} (for models that are just tables,
 * tests and benchmarks).
 * @throws {@link EvaluationError} when the shapes do not match or a factor is not finite.
 */
export function factorizedScorer(factors: ScoringFactors): FactorizedScorer {
  const { userFactors, itemFactors, dimension, itemBias } = factors;
  if (!Number.isInteger(dimension) || dimension < 1)
    throw new EvaluationError(`dimension must be a positive integer, got ${dimension}`);
  if (userFactors.length % dimension !== 0 || itemFactors.length % dimension !== 0) {
    throw new EvaluationError(
      `factor tables of ${userFactors.length} and ${itemFactors.length} values are not multiples of dimension ${dimension}`,
    );
  }
  const numUsers = userFactors.length / dimension;
  const numItems = itemFactors.length / dimension;
  if (itemBias && itemBias.length !== numItems) {
    throw new EvaluationError(`itemBias has ${itemBias.length} values for ${numItems} items`);
  }
  assertFinite(userFactors, dimension, 'user');
  assertFinite(itemFactors, dimension, 'item');
  if (itemBias) assertFinite(itemBias, 1, 'item bias of item');
  return {
    numUsers,
    numItems,
    factors: () => factors,
    scoreAll(users, out) {
      const result = out ?? new Float64Array(users.length * numItems);
      for (let b = 0; b < users.length; b++) {
        const u = users[b]!;
        for (let i = 0; i < numItems; i++) result[b * numItems + i] = dotScore(factors, u, i);
      }
      return result;
    },
    score(users, items) {
      return Float64Array.from(users, (u, t) => dotScore(factors, u, items[t]!));
    },
  };
}

function assertFinite(values: Float32Array, dimension: number, what: string): void {
  for (let k = 0; k < values.length; k++) {
    if (!Number.isFinite(values[k]!)) {
      throw new EvaluationError(
        `${what} ${Math.floor(k / dimension)} has a non-finite factor (${values[k]}) at column ${k % dimension}`,
      );
    }
  }
}
