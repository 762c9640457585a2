import type * as tfc from '@tensorflow/tfjs-core';
import type { Tfjs } from '@advrec/models';

/** Per-row gradients (float64) keyed by row id. */
export type RowGradients = Map<number, Float64Array>;

export interface ReferenceBatch {
  readonly users: Int32Array;
  readonly positives: Int32Array;
  readonly negatives: Int32Array;
}

export interface ReferenceResult {
  /** Per-triple clean BPR loss. */
  readonly tripleLoss: Float64Array;
  /** Per-triple adversarial BPR loss (unweighted), empty without APR. */
  readonly tripleAdversarialLoss: Float64Array;
  readonly userGradients: RowGradients;
  readonly itemGradients: RowGradients;
  /** FGM perturbations per row (APR only). */
  readonly userDeltas: RowGradients;
  readonly itemDeltas: RowGradients;
}

function gatherRows(tf: Tfjs, table: Float32Array, k: number, ids: Int32Array): tfc.Tensor2D {
  const rows = new Float32Array(ids.length * k);
  ids.forEach((id, t) => rows.set(table.subarray(id * k, id * k + k), t * k));
  return tf.tensor2d(rows, [ids.length, k]);
}

function scatter(
  values: Float32Array | Int32Array | Uint8Array,
  ids: Int32Array,
  k: number,
  into: RowGradients,
): void {
  ids.forEach((id, t) => {
    let g = into.get(id);
    if (!g) into.set(id, (g = new Float64Array(k)));
    for (let f = 0; f < k; f++) g[f]! += values[t * k + f]!;
  });
}

/**
 * The MF BPR / APR step by tfjs autodiff on the gathered rows (the reference the fused
 * kernel must match): clean loss `sum softplus(-(p_u.q_i - p_u.q_j))` plus
 * `l2 * sum(||p_u||^2 + ||q_i||^2 + ||q_j||^2)`; with APR, Gamma = d clean / d rows summed
 * per row, Delta = epsilon * Gamma / ||Gamma|| per row (constant), plus
 * `lambda * sum softplus(-((p_u+D_u).(q_i+D_i) - (p_u+D_u).(q_j+D_j)))`.
 */
export function referenceMfStep(
  tf: Tfjs,
  P: Float32Array,
  Q: Float32Array,
  k: number,
  batch: ReferenceBatch,
  options: { l2: number; adversarial?: { epsilon: number; adversarialWeight: number } },
): ReferenceResult {
  const score = (p: tfc.Tensor2D, q: tfc.Tensor2D): tfc.Tensor1D => tf.sum(tf.mul(p, q), 1);
  const pu = gatherRows(tf, P, k, batch.users);
  const qi = gatherRows(tf, Q, k, batch.positives);
  const qj = gatherRows(tf, Q, k, batch.negatives);
  const cleanTriples = (p: tfc.Tensor2D, a: tfc.Tensor2D, b: tfc.Tensor2D): tfc.Tensor1D =>
    tf.softplus(tf.neg(tf.sub(score(p, a), score(p, b)))) as tfc.Tensor1D;
  const tripleLoss = Float64Array.from(cleanTriples(pu, qi, qj).dataSync());
  const userDeltas: RowGradients = new Map();
  const itemDeltas: RowGradients = new Map();
  let du: tfc.Tensor2D | null = null;
  let di: tfc.Tensor2D | null = null;
  let dj: tfc.Tensor2D | null = null;
  let tripleAdversarialLoss = new Float64Array(0);
  if (options.adversarial) {
    const [gp, gi, gj] = tf.grads((p: tfc.Tensor, a: tfc.Tensor, b: tfc.Tensor) =>
      tf.sum(cleanTriples(p as tfc.Tensor2D, a as tfc.Tensor2D, b as tfc.Tensor2D)),
    )([pu, qi, qj]);
    const gammaU: RowGradients = new Map();
    const gammaI: RowGradients = new Map();
    scatter(gp!.dataSync(), batch.users, k, gammaU);
    scatter(gi!.dataSync(), batch.positives, k, gammaI);
    scatter(gj!.dataSync(), batch.negatives, k, gammaI);
    const normalise = (gamma: RowGradients, out: RowGradients): void => {
      for (const [id, g] of gamma) {
        const n = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
        out.set(
          id,
          g.map((v) => (n > 0 ? (options.adversarial!.epsilon * v) / n : 0)),
        );
      }
    };
    normalise(gammaU, userDeltas);
    normalise(gammaI, itemDeltas);
    const deltaRows = (deltas: RowGradients, ids: Int32Array): tfc.Tensor2D => {
      const rows = new Float32Array(ids.length * k);
      ids.forEach((id, t) => rows.set(deltas.get(id)!, t * k));
      return tf.tensor2d(rows, [ids.length, k]);
    };
    du = deltaRows(userDeltas, batch.users);
    di = deltaRows(itemDeltas, batch.positives);
    dj = deltaRows(itemDeltas, batch.negatives);
    tripleAdversarialLoss = Float64Array.from(
      cleanTriples(tf.add(pu, du), tf.add(qi, di), tf.add(qj, dj)).dataSync(),
    );
  }
  const [gp, gi, gj] = tf.grads((p: tfc.Tensor, a: tfc.Tensor, b: tfc.Tensor) => {
    const P2 = p as tfc.Tensor2D;
    const A2 = a as tfc.Tensor2D;
    const B2 = b as tfc.Tensor2D;
    let loss = tf.add(
      tf.sum(cleanTriples(P2, A2, B2)),
      tf.mul(
        options.l2,
        tf.add(tf.add(tf.sum(tf.square(P2)), tf.sum(tf.square(A2))), tf.sum(tf.square(B2))),
      ),
    );
    if (options.adversarial && du && di && dj) {
      loss = tf.add(
        loss,
        tf.mul(
          options.adversarial.adversarialWeight,
          tf.sum(cleanTriples(tf.add(P2, du), tf.add(A2, di), tf.add(B2, dj))),
        ),
      );
    }
    return loss as tfc.Scalar;
  })([pu, qi, qj]);
  const userGradients: RowGradients = new Map();
  const itemGradients: RowGradients = new Map();
  scatter(gp!.dataSync(), batch.users, k, userGradients);
  scatter(gi!.dataSync(), batch.positives, k, itemGradients);
  scatter(gj!.dataSync(), batch.negatives, k, itemGradients);
  return {
    tripleLoss,
    tripleAdversarialLoss,
    userGradients,
    itemGradients,
    userDeltas,
    itemDeltas,
  };
}

/** One TF-style Adagrad step in tfjs ops on the touched rows: acc += g^2; theta -= lr g / sqrt(acc). */
export function referenceAdagrad(
  tf: Tfjs,
  table: Float32Array,
  accumulator: Float32Array,
  k: number,
  gradients: RowGradients,
  learningRate: number,
): { table: Float32Array; accumulator: Float32Array } {
  const t = table.slice();
  const a = accumulator.slice();
  for (const [row, g] of gradients) {
    const theta = tf.tensor1d(table.subarray(row * k, row * k + k));
    const acc = tf.tensor1d(accumulator.subarray(row * k, row * k + k));
    const grad = tf.tensor1d(Float32Array.from(g));
    const acc2 = tf.add(acc, tf.square(grad));
    const theta2 = tf.sub(theta, tf.div(tf.mul(learningRate, grad), tf.sqrt(acc2)));
    t.set(theta2.dataSync(), row * k);
    a.set(acc2.dataSync(), row * k);
  }
  return { table: t, accumulator: a };
}
