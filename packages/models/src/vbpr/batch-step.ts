/**
 * VBPR's batch step: `y = p_u . q_i + h_u . (c_i E) (+ c_i . beta')` for a batch of pairs,
 * the batch's unique items' features gathered once and `C E`, `C^T G` and `G E^T` run as
 * dense products on a {@link Gemm}. @internal
 */
import type { Gemm } from '@advrec/onnx';
import { andThen } from '../batch.js';
import type { PairBatchForward } from '../model.js';
import { ITEM_EMBEDDINGS, USER_EMBEDDINGS } from '../mf.js';
import { SparseRows } from '../sparse-rows.js';
import type { SparseRowsByName } from '../sparse-rows.js';
import type { ParameterTable } from '../tables.js';
import {
  FEATURE_PROJECTION,
  ITEM_FEATURES,
  USER_VISUAL_EMBEDDINGS,
  VISUAL_BIAS,
} from './config.js';

/** The parameters of a VBPR the batch step reads. @internal */
export interface VbprParameters {
  readonly embeddingSize: number;
  readonly featureSize: number;
  readonly userEmbeddings: ParameterTable;
  readonly itemEmbeddings: ParameterTable;
  readonly userVisualEmbeddings: ParameterTable | null;
  readonly featureProjection: ParameterTable;
  readonly visualBias: ParameterTable | null;
  readonly itemFeatures: ParameterTable;
  readonly itemIdDropout: number;
  /** The seed of the item-ID dropout mask. */
  readonly dropoutSeed: number;
}

/** Rows `c_i` of `items` (`n x D`, float32), plus a perturbation of the features when given. */
export function gatherFeatures(
  model: VbprParameters,
  items: Int32Array,
  n: number,
  delta?: SparseRows,
): Float32Array {
  const d = model.featureSize;
  const features = model.itemFeatures.values;
  const c = new Float32Array(n * d);
  for (let s = 0; s < n; s++) {
    const i = items[s]!;
    c.set(features.subarray(i * d, i * d + d), s * d);
    const o = delta ? delta.offsetOf(i) : -1;
    if (o >= 0) {
      const dv = delta!.values;
      for (let j = 0; j < d; j++) c[s * d + j] = c[s * d + j]! + dv[o + j]!;
    }
  }
  return c;
}

/**
 * Which of a training batch's unique items have their ID embedding dropped
 * ({@link VisualBPRConfig.itemIdDropout}): a hash of the seed, the batch's pairs and the
 * item, so the mask depends on nothing but the batch. Null when nothing is dropped.
 */
function droppedItems(
  model: VbprParameters,
  users: Int32Array,
  unique: Int32Array,
  slot: Int32Array,
  count: number,
): Uint8Array | null {
  const rate = model.itemIdDropout;
  if (rate <= 0) return null;
  let h = mix32(0x9e3779b9 ^ model.dropoutSeed);
  for (let t = 0; t < count; t++) h = mix32(h ^ users[t]!) ^ mix32(h + unique[slot[t]!]!);
  const out = new Uint8Array(unique.length);
  const threshold = rate * 2 ** 32;
  for (let s = 0; s < unique.length; s++)
    if (mix32(h ^ mix32(unique[s]! + 1)) >>> 0 < threshold) out[s] = 1;
  return out;
}

/**
 * `y = p_u . q_i + h_u . (c_i E) (+ c_i . beta')` for a batch of pairs, with `h_u = p_u`
 * (shared) or theta_u and every surface optionally perturbed; synchronous when `gemm` is.
 * @internal
 */
export function vbprForward(
  model: VbprParameters,
  gemm: Gemm,
  users: Int32Array,
  items: Int32Array,
  count: number,
  perturbations?: SparseRowsByName,
  training = false,
): PairBatchForward | Promise<PairBatchForward> {
  const k = model.embeddingSize;
  const d = model.featureSize;
  const { unique, slot } = uniqueRows(items, count);
  const nI = unique.length;
  const dropped = training ? droppedItems(model, users, unique, slot, count) : null;
  const dp = perturbations?.get(USER_EMBEDDINGS);
  const dq = perturbations?.get(ITEM_EMBEDDINGS);
  const C = gatherFeatures(model, unique, nI, perturbations?.get(ITEM_FEATURES));
  const E = model.featureProjection.values;
  return andThen(gemm.multiply(C, nI, d, E, d, k), (V) => {
    const P = model.userEmbeddings.values;
    const Q = model.itemEmbeddings.values;
    const H = model.userVisualEmbeddings?.values ?? null;
    const beta = model.visualBias?.values ?? null;
    const bias = new Float64Array(nI);
    if (beta)
      for (let s = 0; s < nI; s++) {
        let acc = 0;
        for (let j = 0; j < d; j++) acc += C[s * d + j]! * beta[j]!;
        bias[s] = acc;
      }
    // The (perturbed) p_u and q_i of each pair, kept for the backward pass.
    const pu = new Float64Array(count * k);
    const qi = new Float64Array(count * k);
    const scores = new Float64Array(count);
    for (let t = 0; t < count; t++) {
      const u = users[t]!;
      const i = items[t]!;
      const s = slot[t]!;
      const op = dp ? dp.offsetOf(u) : -1;
      const oq = dq ? dq.offsetOf(i) : -1;
      const keep = dropped === null || dropped[s] === 0 ? 1 : 0;
      let y = bias[s]!;
      const uk = u * k;
      const ik = i * k;
      const tk = t * k;
      const sk = s * k;
      if (op < 0 && oq < 0 && H === null) {
        // The common case (no perturbation of P or Q, shared user vector), branch-free.
        for (let f = 0; f < k; f++) {
          const p = P[uk + f]!;
          const q = keep * Q[ik + f]!;
          pu[tk + f] = p;
          qi[tk + f] = q;
          y += p * q + p * V[sk + f]!;
        }
      } else
        for (let f = 0; f < k; f++) {
          const p = P[uk + f]! + (op >= 0 ? dp!.values[op + f]! : 0);
          const q = keep * (Q[ik + f]! + (oq >= 0 ? dq!.values[oq + f]! : 0));
          const h = H ? H[uk + f]! : p;
          pu[tk + f] = p;
          qi[tk + f] = q;
          y += p * q + h * V[sk + f]!;
        }
      scores[t] = y;
    }
    const backward = (
      dScores: Float64Array,
      gradients: SparseRowsByName,
      surfaceGradients?: readonly string[],
    ): void | Promise<void> =>
      vbprBackward(
        { model, gemm, users, items, count, unique, slot, dropped, C, V, pu, qi },
        dScores,
        gradients,
        surfaceGradients,
      );
    return { scores, backward };
  });
}

/** What the backward pass keeps from the forward pass. */
interface ForwardPass {
  readonly model: VbprParameters;
  readonly gemm: Gemm;
  readonly users: Int32Array;
  readonly items: Int32Array;
  readonly count: number;
  readonly unique: Int32Array;
  readonly slot: Int32Array;
  readonly dropped: Uint8Array | null;
  /** The batch's unique items' (perturbed) features, `nI x D`. */
  readonly C: Float32Array;
  /** `C E`. */
  readonly V: Float32Array;
  /** The (perturbed) p_u and q_i of each pair. */
  readonly pu: Float64Array;
  readonly qi: Float64Array;
}

/** The gradient rows of `name` in `gradients`, created when missing. */
function rowsOf(
  gradients: SparseRowsByName,
  name: string,
  dimension: number,
  capacity = 1024,
): SparseRows {
  let r = gradients.get(name);
  if (!r) gradients.set(name, (r = new SparseRows(dimension, capacity)));
  return r;
}

/**
 * The backward pass: the ID embeddings' gradients per pair, then `d/dE = C^T G`, the visual
 * bias's, and (unless `surfaceGradients` leaves them out) the features' `G E^T (+ beta')`.
 */
function vbprBackward(
  pass: ForwardPass,
  dScores: Float64Array,
  gradients: SparseRowsByName,
  surfaceGradients?: readonly string[],
): void | Promise<void> {
  const { model, gemm, unique, C } = pass;
  const k = model.embeddingSize;
  const d = model.featureSize;
  const nI = unique.length;
  const E = model.featureProjection.values;
  const beta = model.visualBias?.values ?? null;
  const rows = (name: string, dimension: number, capacity = 1024): SparseRows =>
    rowsOf(gradients, name, dimension, capacity);
  const { gV, gB } = idGradients(pass, dScores, gradients);
  if (beta) {
    const gb = rows(VISUAL_BIAS, 1, d);
    const ob = offsetsOf(gb, null, d);
    const gbv = gb.values;
    for (let j = 0; j < d; j++) {
      let acc = 0;
      for (let s = 0; s < nI; s++) acc += gB[s]! * C[s * d + j]!;
      gbv[ob[j]!]! += acc;
    }
  }
  const G = Float32Array.from(gV);
  const wantFeatures = surfaceGradients?.includes(ITEM_FEATURES) ?? true;
  // d/dE = C^T G (D x K); d/dc_i = G_i E^T (+ beta').
  const dE = gemm.multiply(C, nI, d, G, nI, k, true, false);
  const done = andThen(dE, (dE) => {
    const ge = rows(FEATURE_PROJECTION, k, d);
    const oe = offsetsOf(ge, null, d);
    const gev = ge.values;
    for (let j = 0; j < d; j++) {
      const o = oe[j]!;
      for (let f = 0; f < k; f++) gev[o + f]! += dE[j * k + f]!;
    }
  });
  if (!wantFeatures) return done;
  const features = (): Float32Array | Promise<Float32Array> =>
    gemm.multiply(G, nI, k, E, d, k, false, true);
  const dC = done instanceof Promise ? done.then(features) : features();
  return andThen(dC, (dC) => {
    const gc = rows(ITEM_FEATURES, d, nI);
    const oc = offsetsOf(gc, unique, nI);
    const gcv = gc.values;
    for (let s = 0; s < nI; s++) {
      const o = oc[s]!;
      if (beta) {
        const bias = gB[s]!;
        for (let j = 0; j < d; j++) gcv[o + j]! += dC[s * d + j]! + bias * beta[j]!;
      } else for (let j = 0; j < d; j++) gcv[o + j]! += dC[s * d + j]!;
    }
  });
}

/**
 * The ID embeddings' gradients of each pair into `gradients`; returns d loss / d (c_i E) per
 * unique item and d loss / d (c_i . beta').
 */
function idGradients(
  pass: ForwardPass,
  dScores: Float64Array,
  gradients: SparseRowsByName,
): { gV: Float64Array; gB: Float64Array } {
  const { model, users, items, count, unique, slot, dropped, V, pu, qi } = pass;
  const k = model.embeddingSize;
  const nI = unique.length;
  const H = model.userVisualEmbeddings?.values ?? null;
  const rows = (name: string, dimension: number, capacity = 1024): SparseRows =>
    rowsOf(gradients, name, dimension, capacity);
  const gp = rows(USER_EMBEDDINGS, k, count);
  const gq = rows(ITEM_EMBEDDINGS, k, count);
  const gh = H ? rows(USER_VISUAL_EMBEDDINGS, k, count) : null;
  // Every row first: inserting a row renews `values`, read once afterwards.
  const ou = offsetsOf(gp, users, count);
  const oi = offsetsOf(gq, items, count);
  const oh = gh ? offsetsOf(gh, users, count) : null;
  const gpv = gp.values;
  const gqv = gq.values;
  const ghv = gh ? gh.values : null;
  // d loss / d (c_i E) per unique item, and d loss / d (c_i . beta').
  const gV = new Float64Array(nI * k);
  const gB = new Float64Array(nI);
  for (let t = 0; t < count; t++) {
    const w = dScores[t]!;
    const u = users[t]!;
    const s = slot[t]!;
    const a = ou[t]!;
    const b = oi[t]!;
    const tk = t * k;
    const sk = s * k;
    const kept = dropped === null || dropped[s] === 0;
    if (H === null) {
      // Shared: d/dp_u = q_i + c_i E; d/dq_i = p_u (unless dropped); d/d(c_i E) = p_u.
      for (let f = 0; f < k; f++) {
        const p = pu[tk + f]!;
        gpv[a + f]! += w * (qi[tk + f]! + V[sk + f]!);
        gV[sk + f]! += w * p;
      }
      if (kept) for (let f = 0; f < k; f++) gqv[b + f]! += w * pu[tk + f]!;
    } else {
      // Separate: d/dp_u = q_i; d/dq_i = p_u; d/dtheta_u = c_i E; d/d(c_i E) = theta_u.
      const uk = u * k;
      const c = oh![t]!;
      for (let f = 0; f < k; f++) {
        const p = pu[tk + f]!;
        const v = V[sk + f]!;
        gpv[a + f]! += w * qi[tk + f]!;
        if (kept) gqv[b + f]! += w * p;
        ghv![c + f]! += w * v;
        gV[sk + f]! += w * H[uk + f]!;
      }
    }
    gB[s]! += w;
  }
  return { gV, gB };
}

/** A 32-bit integer hash (murmur3's finaliser). */
function mix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/**
 * Ensures the rows `ids[0..count)` (or `0..count)` when `ids` is null) in `rows`, in order,
 * and returns each one's offset in `rows.values`.
 */
export function offsetsOf(rows: SparseRows, ids: Int32Array | null, count: number): Int32Array {
  const offsets = new Int32Array(count);
  for (let t = 0; t < count; t++) offsets[t] = rows.ensure(ids ? ids[t]! : t);
  return offsets;
}

/** The distinct values of `ids[0..count)` in order of first appearance, and each id's slot. */
export function uniqueRows(
  ids: Int32Array,
  count: number,
): { unique: Int32Array; slot: Int32Array } {
  const slots = new Map<number, number>();
  const slot = new Int32Array(count);
  const unique: number[] = [];
  for (let t = 0; t < count; t++) {
    const id = ids[t]!;
    let s = slots.get(id);
    if (s === undefined) {
      s = unique.length;
      slots.set(id, s);
      unique.push(id);
    }
    slot[t] = s;
  }
  return { unique: Int32Array.from(unique), slot };
}
