/** VBPR's dense factors: what the evaluator ranks with and `score` sums. @internal */
import { multiplyJs } from '@advrec/onnx';
import type { ModelFactors } from '../model.js';
import { gatherFeatures } from './batch-step.js';
import type { VbprParameters } from './batch-step.js';

/** The parameters the factors read. @internal */
export interface VbprFactorParameters extends VbprParameters {
  readonly numUsers: number;
  readonly numItems: number;
  /** `h_u = p_u` (no separate theta_u). */
  readonly shared: boolean;
}

/**
 * The dense factors the evaluator ranks with: user `p_u` (`[p_u, theta_u]`), item
 * `fl32(q_i + fl32(c_i E))` (`[q_i, fl32(c_i E)]`), bias `fl32(c_i . beta')`.
 */
export function vbprFactors(model: VbprFactorParameters): ModelFactors {
  // Every item, in id order (itemSide then reads the feature table in place).
  const all = Int32Array.from({ length: model.numItems }, (_, i) => i);
  const { itemFactors, itemBias } = itemSide(model, all, true);
  const k = model.embeddingSize;
  let userFactors = model.userEmbeddings.values;
  if (!model.shared) {
    userFactors = new Float32Array(model.numUsers * 2 * k);
    const p = model.userEmbeddings.values;
    const h = model.userVisualEmbeddings!.values;
    for (let u = 0; u < model.numUsers; u++) {
      userFactors.set(p.subarray(u * k, u * k + k), u * 2 * k);
      userFactors.set(h.subarray(u * k, u * k + k), u * 2 * k + k);
    }
  }
  const dimension = model.shared ? k : 2 * k;
  return itemBias
    ? { userFactors, itemFactors, dimension, itemBias }
    : { userFactors, itemFactors, dimension };
}

/**
 * The float32 item factor rows (and biases) of `items`, in that order (see {@link vbprFactors});
 * `every`: `items` is every item in id order.
 */
export function itemSide(
  model: VbprFactorParameters,
  items: Int32Array,
  every = false,
): { itemFactors: Float32Array; itemBias?: Float32Array } {
  const k = model.embeddingSize;
  const d = model.featureSize;
  const n = items.length;
  const c = every ? model.itemFeatures.values : gatherFeatures(model, items, n);
  const visual = multiplyJs(c, n, d, model.featureProjection.values, d, k);
  const q = model.itemEmbeddings.values;
  const width = model.shared ? k : 2 * k;
  const itemFactors = new Float32Array(n * width);
  for (let s = 0; s < n; s++) {
    const i = items[s]!;
    for (let f = 0; f < k; f++) {
      if (model.shared) itemFactors[s * k + f] = q[i * k + f]! + visual[s * k + f]!;
      else {
        itemFactors[s * width + f] = q[i * k + f]!;
        itemFactors[s * width + k + f] = visual[s * k + f]!;
      }
    }
  }
  if (!model.visualBias) return { itemFactors };
  const beta = model.visualBias.values;
  const itemBias = new Float32Array(n);
  for (let s = 0; s < n; s++) {
    let acc = 0;
    for (let j = 0; j < d; j++) acc += c[s * d + j]! * beta[j]!;
    itemBias[s] = acc;
  }
  return { itemFactors, itemBias };
}

/** float64 sums of float32 factors in order, plus the bias: the evaluator's canonical score. */
export function canonicalScores(
  f: ModelFactors,
  users: Int32Array,
  items: Int32Array,
  count: number,
): Float64Array {
  const out = new Float64Array(count);
  const k = f.dimension;
  for (let t = 0; t < count; t++) {
    const pu = users[t]! * k;
    const qi = items[t]! * k;
    let s = 0;
    for (let x = 0; x < k; x++) s += f.userFactors[pu + x]! * f.itemFactors[qi + x]!;
    out[t] = f.itemBias ? s + f.itemBias[items[t]!]! : s;
  }
  return out;
}
