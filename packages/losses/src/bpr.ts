/**
 * Numerically stable `ln(1 + e^x)`: exact for large positive and negative `x` (no
 * overflow of `e^x`, no loss to `1 + tiny`).
 */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** Numerically stable logistic sigmoid `1 / (1 + e^-x)`. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/**
 * BPR loss of one triple from its margin `x_uij = y_ui - y_uj` (APR Eq. 1):
 * `-ln sigma(x_uij) = softplus(-x_uij)`, finite for any finite margin.
 */
export function bprLoss(margin: number): number {
  return softplus(-margin);
}

/** `d(-ln sigma(x)) / dx = -sigma(-x)` (APR Eq. 7 and 10, without the weight). */
export function bprLossGradient(margin: number): number {
  return -sigmoid(-margin);
}

/** Totals of a batch's BPR loss. */
export interface BprBatchResult {
  /** `sum_t -ln sigma(y_ui - y_uj)` over the batch (the APR code sums, it does not average). */
  readonly loss: number;
  /** Triples with `y_ui > y_uj` (the training pair accuracy of APR Figure 1b/d). */
  readonly correct: number;
}

/**
 * The BPR loss of a batch and its gradient w.r.t. the scores: for triple `t`,
 * `dPositive[t] = weight * d loss / d y_ui = -weight * sigma(-x)` and
 * `dNegative[t] = -dPositive[t]`. `weight` is 1 for the clean term and lambda
 * (`adversarialWeight`) for the adversarial term of APR (Eq. 9).
 */
export function bprBatch(
  positiveScores: Float64Array,
  negativeScores: Float64Array,
  count: number,
  dPositive: Float64Array,
  dNegative: Float64Array,
  weight = 1,
): BprBatchResult {
  if (count > positiveScores.length || count > negativeScores.length)
    throw new RangeError(`count ${count} exceeds the scores given`);
  let loss = 0;
  let correct = 0;
  for (let t = 0; t < count; t++) {
    const margin = positiveScores[t]! - negativeScores[t]!;
    if (Number.isNaN(margin))
      throw new RangeError(
        `BPR margin of triple ${t} is NaN (scores ${positiveScores[t]}, ${negativeScores[t]})`,
      );
    loss += softplus(-margin);
    if (margin > 0) correct++;
    const d = -weight * sigmoid(-margin);
    dPositive[t] = d;
    dNegative[t] = -d;
  }
  return { loss: weight * loss, correct };
}

/**
 * L2 regularisation of the batch's rows, `l2 * sum ||theta||^2` over every row gathered
 * by the batch (a row gathered twice counts twice, as with `tf.gather` then
 * `tf.nn.l2_loss`-style penalties): returns the penalty of one row; its gradient is
 * `2 * l2 * theta`.
 */
export function l2Penalty(
  values: Float32Array | Float64Array,
  offset: number,
  dimension: number,
  l2: number,
): number {
  let s = 0;
  for (let f = offset; f < offset + dimension; f++) s += values[f]! * values[f]!;
  return l2 * s;
}
