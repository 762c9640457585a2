/** VBPR's diagnostics. */
import type { VbprFactorParameters } from './factors.js';

/** {@link featureSensitivity}'s answer. */
export interface FeatureSensitivity {
  /** The Frobenius norm of E. */
  readonly projectionNorm: number;
  /** The mean over users of `||E^T v_u||`. */
  readonly meanUserSensitivity: number;
}

/**
 * How strongly the scores answer the item features: the Frobenius norm of E, and the mean
 * over users of `||E^T v_u||`, where `v_u` is the user's vector that multiplies `E c_i`
 * (p_u in Eq. 4, theta_u in Eq. 2). The score is linear in the features, so a perturbation
 * of an item's (prepared) features of norm epsilon moves a user's score by at most
 * `epsilon ||E^T v_u||`, and FGM on the features lowers a BPR pair's margin by exactly
 * `2 epsilon ||E^T v_u||` when the pair's items occur once in the batch. AMR's adversarial
 * term is therefore a penalty on this sensitivity, which only a smaller E can lower: a
 * sensitivity far below VBPR's says AMR switched the visual part off rather than made it
 * robust.
 */
export function featureSensitivity(model: VbprFactorParameters): FeatureSensitivity {
  const d = model.featureSize;
  const k = model.embeddingSize;
  const e = model.featureProjection.values;
  // ||E^T v||^2 = v^T G v with G = E^T E (K x K), E stored D x K.
  const gram = new Float64Array(k * k);
  let squares = 0;
  for (let f = 0; f < d; f++) {
    const row = f * k;
    for (let a = 0; a < k; a++) {
      const ea = e[row + a]!;
      squares += ea * ea;
      for (let b = 0; b < k; b++) gram[a * k + b]! += ea * e[row + b]!;
    }
  }
  const users = (model.userVisualEmbeddings ?? model.userEmbeddings).values;
  let sum = 0;
  for (let u = 0; u < model.numUsers; u++) {
    const base = u * k;
    let q = 0;
    for (let a = 0; a < k; a++) {
      let s = 0;
      for (let b = 0; b < k; b++) s += gram[a * k + b]! * users[base + b]!;
      q += users[base + a]! * s;
    }
    sum += Math.sqrt(Math.max(q, 0));
  }
  return {
    projectionNorm: Math.sqrt(squares),
    meanUserSensitivity: model.numUsers > 0 ? sum / model.numUsers : 0,
  };
}
