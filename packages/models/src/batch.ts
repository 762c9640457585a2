import type { Model, PairBatchForward, PairBatchOptions } from './model.js';
import type { SparseRowsByName } from './sparse-rows.js';

/**
 * The batch-level step of any model: its own {@link Model.forwardPairs} (contract v2) when
 * it has one, else `pairScores` now and `pairBackward` on the backward pass (v1 models).
 * The arrays must stay unchanged until the backward pass has run. `options.training` marks
 * a training step (see {@link PairBatchOptions}).
 */
export async function forwardPairs(
  model: Model,
  users: Int32Array,
  items: Int32Array,
  count: number,
  perturbations?: SparseRowsByName,
  options?: PairBatchOptions,
): Promise<PairBatchForward> {
  if (model.forwardPairs) return model.forwardPairs(users, items, count, perturbations, options);
  return {
    scores: model.pairScores(users, items, count, perturbations),
    backward: (dScores, gradients) =>
      model.pairBackward(users, items, count, dScores, gradients, perturbations),
  };
}

/**
 * `f(value)` now when `value` is not a Promise, else once it resolves: lets one body of
 * code run synchronously with a synchronous dense backend and asynchronously with
 * onnxruntime. @internal
 */
export function andThen<T, R>(value: T | Promise<T>, f: (value: T) => R): R | Promise<R> {
  return value instanceof Promise ? value.then(f) : f(value);
}
