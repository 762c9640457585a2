import { ConfigError } from '@advrec/data';
import type {
  JsonObject,
  Model,
  ModelDimensions,
  ModelState,
  PerturbableSurface,
  ReferenceScore,
} from './model.js';
import { DEFAULT_MODEL_SEED, MODEL_SPECIFICATION_VERSION } from './model.js';
import { SparseRows } from './sparse-rows.js';
import type { SparseRowsByName } from './sparse-rows.js';
import { createTable, initializeTruncatedNormal } from './tables.js';
import type { ParameterTable } from './tables.js';
import { checkKnownOptions, checkPairs, checkUsers, collectIssues } from './validate.js';

/** Configuration of {@link MatrixFactorization}. */
export interface MatrixFactorizationConfig {
  /** K, the embedding size (default 64, as both papers). */
  readonly embeddingSize?: number;
  /** Standard deviation of the truncated-normal initialisation (default 0.01, the APR code). */
  readonly initStd?: number;
  /** Seed of the initialisation (default 0). */
  readonly seed?: number;
  /**
   * Add a learned item bias, `y_ui = p_u^T q_i + b_i` (Cornac's and LightFM's BPR; default
   * false: the APR paper's MF has none). The bias starts at 0 and is not perturbed.
   */
  readonly itemBias?: boolean;
}

/** The resolved MF configuration. */
export interface ResolvedMatrixFactorizationConfig {
  readonly embeddingSize: number;
  readonly initStd: number;
  readonly seed: number;
  readonly itemBias: boolean;
}

/** Registered name of {@link MatrixFactorization}. */
export const MF_MODEL_NAME = 'mf';

/** Table (and surface) names of MF, in the papers' vocabulary. */
export const USER_EMBEDDINGS = 'userEmbeddings';
export const ITEM_EMBEDDINGS = 'itemEmbeddings';
/** MF's optional item bias table (`numItems x 1`). */
export const ITEM_BIAS = 'itemBias';

/**
 * The reference definition of MF in tfjs-core: `y_ui = p_u^T q_i` (APR section 2.1; with
 * perturbations, Eq. 12: `(p_u + Delta_u)^T (q_i + Delta_i)`), plus `b_i` when the model
 * has an item bias.
 */
export const mfReferenceScore: ReferenceScore = (tf, users, items) => {
  const p = users[USER_EMBEDDINGS];
  const q = items[ITEM_EMBEDDINGS];
  if (!p || !q) throw new Error('MF reference needs userEmbeddings and itemEmbeddings rows');
  const dot = tf.sum(tf.mul(p, q), 1);
  const b = items[ITEM_BIAS];
  return (b ? tf.add(dot, tf.reshape(b, [-1])) : dot) as ReturnType<ReferenceScore>;
};

/** Validates and fills the defaults of an MF configuration (every problem at once). */
export function resolveMatrixFactorizationConfig(
  config: MatrixFactorizationConfig = {},
): ResolvedMatrixFactorizationConfig {
  const resolved = {
    embeddingSize: config.embeddingSize ?? 64,
    initStd: config.initStd ?? 0.01,
    seed: config.seed ?? DEFAULT_MODEL_SEED,
    itemBias: config.itemBias ?? false,
  };
  collectIssues((issue) => {
    checkKnownOptions(config, ['embeddingSize', 'initStd', 'seed', 'itemBias'], 'mf', issue);
    if (typeof resolved.itemBias !== 'boolean')
      issue('itemBias', `must be true or false, got ${String(resolved.itemBias)}`);
    if (!Number.isInteger(resolved.embeddingSize) || resolved.embeddingSize < 1)
      issue('embeddingSize', `must be a positive integer, got ${resolved.embeddingSize}`);
    if (!Number.isFinite(resolved.initStd) || resolved.initStd < 0)
      issue('initStd', `must be a finite non-negative number, got ${resolved.initStd}`);
    if (!Number.isInteger(resolved.seed) || resolved.seed < 0)
      issue('seed', `must be a non-negative integer, got ${resolved.seed}`);
  });
  return resolved;
}

/**
 * Matrix factorisation: `y_ui = p_u^T q_i` with user embeddings P (`numUsers x K`) and
 * item embeddings Q (`numItems x K`), both perturbable (APR/AMF), and optionally an item
 * bias `b_i` (`itemBias: true`). Scores are float64 sums over the dimension in order (then
 * `+ b_i`), the number the evaluator ranks by.
 */
export class MatrixFactorization implements Model {
  readonly specificationVersion = MODEL_SPECIFICATION_VERSION;
  readonly modelName = MF_MODEL_NAME;
  readonly config: JsonObject;
  readonly numUsers: number;
  readonly numItems: number;
  readonly embeddingSize: number;
  /** P, `numUsers x K`. */
  readonly userEmbeddings: ParameterTable;
  /** Q, `numItems x K`. */
  readonly itemEmbeddings: ParameterTable;
  /** b, `numItems x 1`, when the model has an item bias. */
  readonly itemBias: ParameterTable | null;
  readonly tables: readonly ParameterTable[];
  readonly trainableTables: readonly string[];
  readonly surfaces: readonly PerturbableSurface[];
  readonly reference = mfReferenceScore;

  /**
   * A new MF with truncated-normal initial embeddings (std `initStd`, seeded), or with
   * the given tables (restore).
   */
  constructor(
    dimensions: ModelDimensions,
    config: MatrixFactorizationConfig = {},
    tables?: {
      userEmbeddings: ParameterTable;
      itemEmbeddings: ParameterTable;
      itemBias?: ParameterTable;
    },
  ) {
    const resolved = resolveMatrixFactorizationConfig(config);
    collectIssues((issue) => {
      if (!Number.isInteger(dimensions.numUsers) || dimensions.numUsers < 1)
        issue('numUsers', `must be a positive integer, got ${dimensions.numUsers}`);
      if (!Number.isInteger(dimensions.numItems) || dimensions.numItems < 1)
        issue('numItems', `must be a positive integer, got ${dimensions.numItems}`);
    });
    // The bias is recorded only when present: configs of bias-free MF read as before.
    const { itemBias, ...rest } = resolved;
    this.config = itemBias ? { ...rest, itemBias } : rest;
    this.numUsers = dimensions.numUsers;
    this.numItems = dimensions.numItems;
    const k = resolved.embeddingSize;
    this.embeddingSize = k;
    if (tables) {
      checkTable(tables.userEmbeddings, USER_EMBEDDINGS, this.numUsers, k);
      checkTable(tables.itemEmbeddings, ITEM_EMBEDDINGS, this.numItems, k);
      this.userEmbeddings = tables.userEmbeddings;
      this.itemEmbeddings = tables.itemEmbeddings;
      if (itemBias) {
        if (!tables.itemBias)
          throw new ConfigError([
            {
              path: `tables.${ITEM_BIAS}`,
              message: 'itemBias is true but no itemBias table is given',
            },
          ]);
        checkTable(tables.itemBias, ITEM_BIAS, this.numItems, 1);
      }
      this.itemBias = itemBias ? tables.itemBias! : null;
    } else {
      this.userEmbeddings = createTable(USER_EMBEDDINGS, 'user', this.numUsers, k);
      this.itemEmbeddings = createTable(ITEM_EMBEDDINGS, 'item', this.numItems, k);
      initializeTruncatedNormal(this.userEmbeddings, resolved.seed, 1, resolved.initStd);
      initializeTruncatedNormal(this.itemEmbeddings, resolved.seed, 2, resolved.initStd);
      this.itemBias = itemBias ? createTable(ITEM_BIAS, 'item', this.numItems, 1) : null;
    }
    this.tables = this.itemBias
      ? [this.userEmbeddings, this.itemEmbeddings, this.itemBias]
      : [this.userEmbeddings, this.itemEmbeddings];
    this.trainableTables = this.tables.map((t) => t.name);
    this.surfaces = [
      { name: USER_EMBEDDINGS, side: 'user', rows: this.numUsers, dimension: k, affine: true },
      { name: ITEM_EMBEDDINGS, side: 'item', rows: this.numItems, dimension: k, affine: true },
    ];
  }

  /** Rebuilds an MF from a checkpoint's state. */
  static restore(state: ModelState): MatrixFactorization {
    const byName = new Map(state.tables.map((t) => [t.name, t]));
    const p = byName.get(USER_EMBEDDINGS);
    const q = byName.get(ITEM_EMBEDDINGS);
    const b = byName.get(ITEM_BIAS);
    if (!p || !q)
      throw new ConfigError([
        { path: 'tables', message: 'an MF state needs userEmbeddings and itemEmbeddings' },
      ]);
    return new MatrixFactorization(
      { numUsers: state.numUsers, numItems: state.numItems },
      state.config as MatrixFactorizationConfig,
      { userEmbeddings: p, itemEmbeddings: q, ...(b ? { itemBias: b } : {}) },
    );
  }

  /** The dense factors (`userFactors . itemFactors`), for the evaluator's GEMM paths. */
  factors(): {
    userFactors: Float32Array;
    itemFactors: Float32Array;
    dimension: number;
    itemBias?: Float32Array;
  } {
    return {
      userFactors: this.userEmbeddings.values,
      itemFactors: this.itemEmbeddings.values,
      dimension: this.embeddingSize,
      ...(this.itemBias ? { itemBias: this.itemBias.values } : {}),
    };
  }

  score(users: Int32Array, items: Int32Array): Float64Array {
    checkPairs(this, users, items, users.length);
    return this.pairScores(users, items, users.length);
  }

  scoreAll(users: Int32Array, out?: Float64Array): Float64Array {
    checkUsers(this, users);
    const n = this.numItems;
    const k = this.embeddingSize;
    const result = out ?? new Float64Array(users.length * n);
    if (result.length < users.length * n)
      throw new RangeError(`out has ${result.length} values, needs ${users.length * n}`);
    const p = this.userEmbeddings.values;
    const q = this.itemEmbeddings.values;
    const bias = this.itemBias?.values;
    for (let b = 0; b < users.length; b++) {
      const pu = users[b]! * k;
      const row = b * n;
      for (let i = 0; i < n; i++) {
        const qi = i * k;
        let s = 0;
        for (let f = 0; f < k; f++) s += p[pu + f]! * q[qi + f]!;
        result[row + i] = bias ? s + bias[i]! : s;
      }
    }
    return result;
  }

  pairScores(
    users: Int32Array,
    items: Int32Array,
    count: number,
    perturbations?: SparseRowsByName,
  ): Float64Array {
    checkPairs(this, users, items, count);
    const k = this.embeddingSize;
    const p = this.userEmbeddings.values;
    const q = this.itemEmbeddings.values;
    const du = perturbations?.get(USER_EMBEDDINGS);
    const di = perturbations?.get(ITEM_EMBEDDINGS);
    const bias = this.itemBias?.values;
    const out = new Float64Array(count);
    for (let t = 0; t < count; t++) {
      const u = users[t]!;
      const i = items[t]!;
      const pu = u * k;
      const qi = i * k;
      const ou = du ? du.offsetOf(u) : -1;
      const oi = di ? di.offsetOf(i) : -1;
      let s = 0;
      if (ou < 0 && oi < 0) {
        for (let f = 0; f < k; f++) s += p[pu + f]! * q[qi + f]!;
      } else {
        const vu = du?.values;
        const vi = di?.values;
        for (let f = 0; f < k; f++) {
          const a = p[pu + f]! + (ou >= 0 ? vu![ou + f]! : 0);
          const b = q[qi + f]! + (oi >= 0 ? vi![oi + f]! : 0);
          s += a * b;
        }
      }
      out[t] = bias ? s + bias[i]! : s;
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
    const p = this.userEmbeddings.values;
    const q = this.itemEmbeddings.values;
    const du = perturbations?.get(USER_EMBEDDINGS);
    const di = perturbations?.get(ITEM_EMBEDDINGS);
    const gu = rowsFor(gradients, USER_EMBEDDINGS, k);
    const gi = rowsFor(gradients, ITEM_EMBEDDINGS, k);
    const gb = this.itemBias ? rowsFor(gradients, ITEM_BIAS, 1) : null;
    for (let t = 0; t < count; t++) {
      const d = dScores[t]!;
      const u = users[t]!;
      const i = items[t]!;
      if (gb) {
        const o = gb.ensure(i);
        gb.values[o]! += d;
      }
      const ou = du ? du.offsetOf(u) : -1;
      const oi = di ? di.offsetOf(i) : -1;
      const gOffU = gu.ensure(u);
      const gOffI = gi.ensure(i);
      const gvU = gu.values;
      const gvI = gi.values;
      const pu = u * k;
      const qi = i * k;
      for (let f = 0; f < k; f++) {
        const a = p[pu + f]! + (ou >= 0 ? du!.values[ou + f]! : 0);
        const b = q[qi + f]! + (oi >= 0 ? di!.values[oi + f]! : 0);
        gvU[gOffU + f]! += d * b;
        gvI[gOffI + f]! += d * a;
      }
    }
  }
}

function rowsFor(gradients: SparseRowsByName, name: string, dimension: number): SparseRows {
  let rows = gradients.get(name);
  if (!rows) {
    rows = new SparseRows(dimension, 1024);
    gradients.set(name, rows);
  }
  return rows;
}

function checkTable(table: ParameterTable, name: string, rows: number, dimension: number): void {
  if (
    table.rows !== rows ||
    table.dimension !== dimension ||
    table.values.length !== rows * dimension
  )
    throw new ConfigError([
      {
        path: `tables.${name}`,
        message: `expected ${rows} x ${dimension}, found ${table.rows} x ${table.dimension} (${table.values.length} values)`,
      },
    ]);
}
