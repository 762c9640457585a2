import { ConfigError, DataError } from '@advrec/data';
import type { InteractionMatrix } from '@advrec/data';
import type { JsonObject, Model, ModelState, PerturbableSurface, ReferenceScore } from './model.js';
import { MODEL_SPECIFICATION_VERSION } from './model.js';
import { ITEM_EMBEDDINGS, USER_EMBEDDINGS } from './mf.js';
import { SparseRows } from './sparse-rows.js';
import type { SparseRowsByName } from './sparse-rows.js';
import { createTable, initializeTruncatedNormal } from './tables.js';
import type { ParameterTable } from './tables.js';
import { checkPairs, checkUsers, collectIssues } from './validate.js';

/** Registered name of {@link VisualBPR}. */
export const VBPR_MODEL_NAME = 'vbpr';
/** Table and surface names of the visual models, in the papers' vocabulary. */
export const USER_VISUAL_EMBEDDINGS = 'userVisualEmbeddings';
export const FEATURE_PROJECTION = 'featureProjection';
export const VISUAL_BIAS = 'visualBias';
export const ITEM_FEATURES = 'itemFeatures';

/** Configuration of {@link VisualBPR}. */
export interface VisualBPRConfig {
  /** K (default 64). */
  readonly embeddingSize?: number;
  /**
   * `shared` (default): the AMR paper's model, Eq. 4, `y_ui = p_u . (q_i + E c_i)`, one
   * embedding per user. `separate`: VBPR's Eq. 2, `y_ui = p_u . q_i + theta_u . (E c_i)`
   * with a second user embedding theta_u in the visual space.
   */
  readonly userVisual?: 'shared' | 'separate';
  /** Add VBPR's visual bias `beta' . c_i` (default false). */
  readonly visualBias?: boolean;
  /** Truncated-normal std of the embeddings (default 0.01). */
  readonly initStd?: number;
  /** Truncated-normal std of E (default 0.01). */
  readonly projectionInitStd?: number;
  readonly seed?: number;
}

/** A resolved {@link VisualBPRConfig}. */
export interface ResolvedVisualBPRConfig {
  readonly embeddingSize: number;
  readonly userVisual: 'shared' | 'separate';
  readonly visualBias: boolean;
  readonly initStd: number;
  readonly projectionInitStd: number;
  readonly seed: number;
}

/**
 * The reference definition in tfjs: `p_u . q_i + h_u . (c_i E)` (+ `c_i . beta'`), with
 * `h_u = p_u` (shared) or theta_u; E stored as `D x K` (the transpose of the paper's
 * `K x D`), so `E c_i` is the row `c_i E`.
 */
export const vbprReferenceScore: ReferenceScore = (tf, users, items, dense) => {
  const p = users[USER_EMBEDDINGS]!;
  const q = items[ITEM_EMBEDDINGS]!;
  const c = items[ITEM_FEATURES]!;
  const e = dense[FEATURE_PROJECTION]!;
  const h = users[USER_VISUAL_EMBEDDINGS] ?? p;
  const visual = tf.matMul(c, e);
  let score = tf.add(tf.sum(tf.mul(p, q), 1), tf.sum(tf.mul(h, visual), 1));
  const beta = dense[VISUAL_BIAS];
  if (beta) score = tf.add(score, tf.reshape(tf.matMul(c, beta), [-1]));
  return score as ReturnType<ReferenceScore>;
};

/** Validates and fills the defaults (every problem at once). */
export function resolveVisualBPRConfig(config: VisualBPRConfig = {}): ResolvedVisualBPRConfig {
  const r: ResolvedVisualBPRConfig = {
    embeddingSize: config.embeddingSize ?? 64,
    userVisual: config.userVisual ?? 'shared',
    visualBias: config.visualBias ?? false,
    initStd: config.initStd ?? 0.01,
    projectionInitStd: config.projectionInitStd ?? 0.01,
    seed: config.seed ?? 0,
  };
  collectIssues((issue) => {
    if (!Number.isInteger(r.embeddingSize) || r.embeddingSize < 1)
      issue('embeddingSize', `must be a positive integer, got ${r.embeddingSize}`);
    if (r.userVisual !== 'shared' && r.userVisual !== 'separate')
      issue('userVisual', `must be shared or separate, got ${String(r.userVisual)}`);
    if (typeof r.visualBias !== 'boolean')
      issue('visualBias', `must be a boolean, got ${String(r.visualBias)}`);
    for (const key of ['initStd', 'projectionInitStd'] as const)
      if (!(Number.isFinite(r[key]) && r[key] >= 0))
        issue(key, `must be a finite number >= 0, got ${r[key]}`);
    if (!Number.isInteger(r.seed) || r.seed < 0)
      issue('seed', `must be a non-negative integer, got ${r.seed}`);
  });
  return r;
}

/**
 * Visually-aware BPR: item images enter through fixed CNN features `c_i` (D-dim) and a
 * learned projection E. Surfaces: `userEmbeddings`, `itemEmbeddings` and `itemFeatures`
 * (AMR perturbs the features, Eq. 5-6). Items without a training interaction (cold start)
 * keep a zero ID embedding and are scored by their features alone, as the AMR paper does.
 *
 * Scores are canonical inner products of float32 factors: the user factor is `p_u` (and
 * `theta_u`), the item factor `fl32(q_i + fl32(c_i E))` (or `[q_i, fl32(c_i E)]`), summed in
 * float64 in order, plus `fl32(c_i . beta')`; `factors()` exposes them so the evaluator
 * ranks with GEMMs.
 */
export class VisualBPR implements Model {
  readonly specificationVersion = MODEL_SPECIFICATION_VERSION;
  readonly modelName = VBPR_MODEL_NAME;
  readonly config: JsonObject;
  readonly numUsers: number;
  readonly numItems: number;
  readonly embeddingSize: number;
  readonly featureSize: number;
  readonly shared: boolean;
  readonly userEmbeddings: ParameterTable;
  readonly itemEmbeddings: ParameterTable;
  readonly userVisualEmbeddings: ParameterTable | null;
  /** E, stored `D x K`. */
  readonly featureProjection: ParameterTable;
  readonly visualBias: ParameterTable | null;
  /** c_i, `numItems x D`, fixed. */
  readonly itemFeatures: ParameterTable;
  readonly tables: readonly ParameterTable[];
  readonly trainableTables: readonly string[];
  readonly surfaces: readonly PerturbableSurface[];
  readonly reference = vbprReferenceScore;

  /**
   * A new model over `features` (`numItems x D`, row i = dense item i; zero rows for items
   * without an image), or one rebuilt from `tables` (restore). `train` marks cold-start
   * items, whose ID embeddings are zeroed.
   */
  constructor(
    dimensions: { numUsers: number; numItems: number },
    features: { data: Float32Array; dimension: number } | null,
    config: VisualBPRConfig = {},
    options: { train?: InteractionMatrix; tables?: readonly ParameterTable[] } = {},
  ) {
    const r = resolveVisualBPRConfig(config);
    this.config = { ...r };
    this.numUsers = dimensions.numUsers;
    this.numItems = dimensions.numItems;
    this.embeddingSize = r.embeddingSize;
    this.shared = r.userVisual === 'shared';
    const k = r.embeddingSize;
    const given = new Map((options.tables ?? []).map((t) => [t.name, t]));
    const take = (
      name: string,
      side: ParameterTable['side'],
      rows: number,
      dimension: number,
    ): ParameterTable | null => {
      const t = given.get(name);
      if (!t) return null;
      if (t.rows !== rows || t.dimension !== dimension)
        throw new ConfigError([
          {
            path: `tables.${name}`,
            message: `expected ${rows} x ${dimension}, found ${t.rows} x ${t.dimension}`,
          },
        ]);
      return t;
    };
    let itemFeatures = given.get(ITEM_FEATURES) ?? null;
    if (!itemFeatures) {
      if (!features)
        throw new ConfigError([{ path: 'features', message: 'VBPR needs an item feature matrix' }]);
      if (features.data.length !== this.numItems * features.dimension)
        throw new DataError(
          `item features have ${features.data.length} values, expected ${this.numItems} items x ${features.dimension}`,
        );
      for (let k2 = 0; k2 < features.data.length; k2++)
        if (!Number.isFinite(features.data[k2]))
          throw new DataError(
            `item feature ${k2 % features.dimension} of item ${Math.floor(k2 / features.dimension)} is ${features.data[k2]}`,
          );
      itemFeatures = createTable(ITEM_FEATURES, 'item', this.numItems, features.dimension);
      itemFeatures.values.set(features.data);
    }
    const d = itemFeatures.dimension;
    this.featureSize = d;
    this.itemFeatures = itemFeatures;
    const init = (t: ParameterTable, key: number, std: number): ParameterTable => {
      initializeTruncatedNormal(t, r.seed, key, std);
      return t;
    };
    this.userEmbeddings =
      take(USER_EMBEDDINGS, 'user', this.numUsers, k) ??
      init(createTable(USER_EMBEDDINGS, 'user', this.numUsers, k), 1, r.initStd);
    this.itemEmbeddings =
      take(ITEM_EMBEDDINGS, 'item', this.numItems, k) ??
      init(createTable(ITEM_EMBEDDINGS, 'item', this.numItems, k), 2, r.initStd);
    this.userVisualEmbeddings = this.shared
      ? null
      : (take(USER_VISUAL_EMBEDDINGS, 'user', this.numUsers, k) ??
        init(createTable(USER_VISUAL_EMBEDDINGS, 'user', this.numUsers, k), 3, r.initStd));
    this.featureProjection =
      take(FEATURE_PROJECTION, 'dense', d, k) ??
      init(createTable(FEATURE_PROJECTION, 'dense', d, k), 4, r.projectionInitStd);
    this.visualBias = r.visualBias
      ? (take(VISUAL_BIAS, 'dense', d, 1) ?? createTable(VISUAL_BIAS, 'dense', d, 1))
      : null;
    if (options.train) {
      const degrees = options.train.itemDegrees();
      for (let i = 0; i < this.numItems; i++)
        if (degrees[i] === 0) this.itemEmbeddings.values.fill(0, i * k, (i + 1) * k);
    }
    this.tables = [
      this.userEmbeddings,
      this.itemEmbeddings,
      ...(this.userVisualEmbeddings ? [this.userVisualEmbeddings] : []),
      this.featureProjection,
      ...(this.visualBias ? [this.visualBias] : []),
      this.itemFeatures,
    ];
    this.trainableTables = this.tables.filter((t) => t !== this.itemFeatures).map((t) => t.name);
    this.surfaces = [
      { name: USER_EMBEDDINGS, side: 'user', rows: this.numUsers, dimension: k },
      { name: ITEM_EMBEDDINGS, side: 'item', rows: this.numItems, dimension: k },
      { name: ITEM_FEATURES, side: 'item', rows: this.numItems, dimension: d },
    ];
  }

  /**
   * VBPR initialised from a trained MF (AMR section 4.1: "using the ID embeddings learned by
   * MF leads to better performance"): P and Q copied (cold-start items' Q zeroed), E (and
   * theta) freshly initialised.
   */
  static fromMatrixFactorization(
    mf: {
      numUsers: number;
      numItems: number;
      embeddingSize: number;
      userEmbeddings: ParameterTable;
      itemEmbeddings: ParameterTable;
    },
    features: { data: Float32Array; dimension: number },
    config: VisualBPRConfig = {},
    train?: InteractionMatrix,
  ): VisualBPR {
    if (config.embeddingSize !== undefined && config.embeddingSize !== mf.embeddingSize)
      throw new ConfigError([
        {
          path: 'embeddingSize',
          message: `must match the MF's ${mf.embeddingSize}, got ${config.embeddingSize}`,
        },
      ]);
    const model = new VisualBPR(
      mf,
      features,
      { ...config, embeddingSize: mf.embeddingSize },
      train ? { train } : {},
    );
    model.userEmbeddings.values.set(mf.userEmbeddings.values);
    model.itemEmbeddings.values.set(mf.itemEmbeddings.values);
    if (train) {
      const degrees = train.itemDegrees();
      const k = mf.embeddingSize;
      for (let i = 0; i < model.numItems; i++)
        if (degrees[i] === 0) model.itemEmbeddings.values.fill(0, i * k, (i + 1) * k);
    }
    return model;
  }

  /** Rebuilds a model from a checkpoint's state (it adopts the state's tables, no copy). */
  static restore(state: ModelState): VisualBPR {
    return new VisualBPR(state, null, state.config as VisualBPRConfig, { tables: state.tables });
  }

  /** `fl32(c_i E)` for one item into `out` (length K), c_i optionally perturbed. */
  private project(i: number, out: Float64Array, delta?: Float64Array, deltaOffset = -1): void {
    const k = this.embeddingSize;
    const d = this.featureSize;
    const c = this.itemFeatures.values;
    const e = this.featureProjection.values;
    out.fill(0, 0, k);
    const base = i * d;
    for (let j = 0; j < d; j++) {
      const cj = c[base + j]! + (deltaOffset >= 0 ? delta![deltaOffset + j]! : 0);
      if (cj === 0) continue;
      const row = j * k;
      for (let f = 0; f < k; f++) out[f]! += cj * e[row + f]!;
    }
  }

  private biasOf(i: number): number {
    if (!this.visualBias) return 0;
    const d = this.featureSize;
    const c = this.itemFeatures.values;
    const b = this.visualBias.values;
    let s = 0;
    for (let j = 0; j < d; j++) s += c[i * d + j]! * b[j]!;
    return Math.fround(s);
  }

  /**
   * The dense factors the evaluator ranks with: user `p_u` (`[p_u, theta_u]`), item
   * `fl32(q_i + fl32(c_i E))` (`[q_i, fl32(c_i E)]`), bias `fl32(c_i . beta')`.
   */
  factors(): {
    userFactors: Float32Array;
    itemFactors: Float32Array;
    dimension: number;
    itemBias?: Float32Array;
  } {
    const k = this.embeddingSize;
    const n = this.numItems;
    const width = this.shared ? k : 2 * k;
    const itemFactors = new Float32Array(n * width);
    const v = new Float64Array(k);
    for (let i = 0; i < n; i++) this.itemFactorRow(i, itemFactors, i * width, v);
    let userFactors = this.userEmbeddings.values;
    if (!this.shared) {
      userFactors = new Float32Array(this.numUsers * width);
      const p = this.userEmbeddings.values;
      const h = this.userVisualEmbeddings!.values;
      for (let u = 0; u < this.numUsers; u++) {
        userFactors.set(p.subarray(u * k, u * k + k), u * width);
        userFactors.set(h.subarray(u * k, u * k + k), u * width + k);
      }
    }
    const itemBias = this.visualBias
      ? Float32Array.from({ length: n }, (_, i) => this.biasOf(i))
      : undefined;
    return itemBias
      ? { userFactors, itemFactors, dimension: width, itemBias }
      : { userFactors, itemFactors, dimension: width };
  }

  /** Item i's float32 factor row (`fl32(q_i + fl32(c_i E))` or `[q_i, fl32(c_i E)]`) into `out` at `offset`. */
  private itemFactorRow(i: number, out: Float32Array, offset: number, scratch: Float64Array): void {
    const k = this.embeddingSize;
    const q = this.itemEmbeddings.values;
    this.project(i, scratch);
    for (let f = 0; f < k; f++) {
      const visual = Math.fround(scratch[f]!);
      if (this.shared) out[offset + f] = q[i * k + f]! + visual;
      else {
        out[offset + f] = q[i * k + f]!;
        out[offset + k + f] = visual;
      }
    }
  }

  score(users: Int32Array, items: Int32Array): Float64Array {
    checkPairs(this, users, items, users.length);
    // Project only the items asked for (the same float32 rows as factors()).
    const k = this.embeddingSize;
    const width = this.shared ? k : 2 * k;
    const rows = new Map<number, Float32Array>();
    const v = new Float64Array(k);
    const p = this.userEmbeddings.values;
    const h = this.userVisualEmbeddings?.values ?? null;
    const out = new Float64Array(users.length);
    for (let t = 0; t < users.length; t++) {
      const i = items[t]!;
      let row = rows.get(i);
      if (!row) {
        row = new Float32Array(width);
        this.itemFactorRow(i, row, 0, v);
        rows.set(i, row);
      }
      const u = users[t]!;
      let s = 0;
      for (let f = 0; f < k; f++) s += p[u * k + f]! * row[f]!;
      if (h) for (let f = 0; f < k; f++) s += h[u * k + f]! * row[k + f]!;
      out[t] = this.visualBias ? s + this.biasOf(i) : s;
    }
    return out;
  }

  scoreAll(users: Int32Array, out?: Float64Array): Float64Array {
    checkUsers(this, users);
    const f = this.factors();
    const n = this.numItems;
    const result = out ?? new Float64Array(users.length * n);
    const items = Int32Array.from({ length: n }, (_, i) => i);
    const repeated = new Int32Array(n);
    for (let b = 0; b < users.length; b++) {
      repeated.fill(users[b]!);
      result.set(canonicalScores(f, repeated, items, n), b * n);
    }
    return result;
  }

  /** Training-time scores (float64 math, with optional perturbations of any surface). */
  pairScores(
    users: Int32Array,
    items: Int32Array,
    count: number,
    perturbations?: SparseRowsByName,
  ): Float64Array {
    checkPairs(this, users, items, count);
    const k = this.embeddingSize;
    const out = new Float64Array(count);
    const v = new Float64Array(k);
    const p = this.userEmbeddings.values;
    const q = this.itemEmbeddings.values;
    const h = this.userVisualEmbeddings?.values ?? p;
    const dp = perturbations?.get(USER_EMBEDDINGS);
    const dq = perturbations?.get(ITEM_EMBEDDINGS);
    const dc = perturbations?.get(ITEM_FEATURES);
    for (let t = 0; t < count; t++) {
      const u = users[t]!;
      const i = items[t]!;
      const op = dp ? dp.offsetOf(u) : -1;
      const oq = dq ? dq.offsetOf(i) : -1;
      const oc = dc ? dc.offsetOf(i) : -1;
      this.project(i, v, dc?.values, oc);
      let s = 0;
      for (let f = 0; f < k; f++) {
        const pu = p[u * k + f]! + (op >= 0 ? dp!.values[op + f]! : 0);
        const qi = q[i * k + f]! + (oq >= 0 ? dq!.values[oq + f]! : 0);
        const hu = this.shared ? pu : h[u * k + f]!;
        s += pu * qi + hu * v[f]!;
      }
      if (this.visualBias) {
        const d = this.featureSize;
        const b = this.visualBias.values;
        const c = this.itemFeatures.values;
        for (let j = 0; j < d; j++)
          s += (c[i * d + j]! + (oc >= 0 ? dc!.values[oc + j]! : 0)) * b[j]!;
      }
      out[t] = s;
    }
    return out;
  }

  pairBackward(
    users: Int32Array,
    items: Int32Array,
    count: number,
    dScores: Float64Array,
    gradients: SparseRowsByName,
    perturbations?: SparseRowsByName,
  ): void {
    checkPairs(this, users, items, count);
    const k = this.embeddingSize;
    const d = this.featureSize;
    const rows = (name: string, dimension: number, capacity = 1024): SparseRows => {
      let r = gradients.get(name);
      if (!r) gradients.set(name, (r = new SparseRows(dimension, capacity)));
      return r;
    };
    const gp = rows(USER_EMBEDDINGS, k);
    const gq = rows(ITEM_EMBEDDINGS, k);
    const gh = this.userVisualEmbeddings ? rows(USER_VISUAL_EMBEDDINGS, k) : null;
    const ge = rows(FEATURE_PROJECTION, k, d);
    const gb = this.visualBias ? rows(VISUAL_BIAS, 1, d) : null;
    const gc = rows(ITEM_FEATURES, d);
    const oe = new Int32Array(d);
    for (let j = 0; j < d; j++) oe[j] = ge.ensure(j);
    const ob = gb ? Int32Array.from({ length: d }, (_, j) => gb.ensure(j)) : null;
    const p = this.userEmbeddings.values;
    const q = this.itemEmbeddings.values;
    const h = this.userVisualEmbeddings?.values ?? null;
    const e = this.featureProjection.values;
    const c = this.itemFeatures.values;
    const dp = perturbations?.get(USER_EMBEDDINGS);
    const dq = perturbations?.get(ITEM_EMBEDDINGS);
    const dc = perturbations?.get(ITEM_FEATURES);
    const v = new Float64Array(k);
    const hu = new Float64Array(k);
    for (let t = 0; t < count; t++) {
      const w = dScores[t]!;
      const u = users[t]!;
      const i = items[t]!;
      const op = dp ? dp.offsetOf(u) : -1;
      const oq = dq ? dq.offsetOf(i) : -1;
      const oc = dc ? dc.offsetOf(i) : -1;
      this.project(i, v, dc?.values, oc);
      const ou = gp.ensure(u);
      const oi = gq.ensure(i);
      const oh = gh ? gh.ensure(u) : -1;
      const ocg = gc.ensure(i);
      for (let f = 0; f < k; f++) {
        const pu = p[u * k + f]! + (op >= 0 ? dp!.values[op + f]! : 0);
        const qi = q[i * k + f]! + (oq >= 0 ? dq!.values[oq + f]! : 0);
        hu[f] = h ? h[u * k + f]! : pu;
        // d/dp_u = q_i (+ c_i E when shared); d/dq_i = p_u; d/dtheta_u = c_i E.
        gp.values[ou + f]! += w * (this.shared ? qi + v[f]! : qi);
        gq.values[oi + f]! += w * pu;
        if (gh) gh.values[oh + f]! += w * v[f]!;
      }
      // d/dE[j,:] = c_ij h_u; d/dc_ij = E[j,:] . h_u (+ beta'_j).
      for (let j = 0; j < d; j++) {
        const cj = c[i * d + j]! + (oc >= 0 ? dc!.values[oc + j]! : 0);
        const row = j * k;
        let dot = 0;
        for (let f = 0; f < k; f++) {
          ge.values[oe[j]! + f]! += w * cj * hu[f]!;
          dot += e[row + f]! * hu[f]!;
        }
        if (gb) {
          gb.values[ob![j]!]! += w * cj;
          dot += this.visualBias!.values[j]!;
        }
        gc.values[ocg + j]! += w * dot;
      }
    }
  }
}

/** float64 sums of float32 factors in order, plus the bias: the evaluator's canonical score. */
function canonicalScores(
  f: {
    userFactors: Float32Array;
    itemFactors: Float32Array;
    dimension: number;
    itemBias?: Float32Array;
  },
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
