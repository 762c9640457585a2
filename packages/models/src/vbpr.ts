import { ConfigError, DataError, principalComponents, projectRows } from '@advrec/data';
import type { InteractionMatrix } from '@advrec/data';
import { createGemm, jsGemm, multiplyJs } from '@advrec/onnx';
import type { Gemm, GemmBackendName } from '@advrec/onnx';
import { andThen } from './batch.js';
import type {
  JsonObject,
  Model,
  ModelFactors,
  ModelState,
  PairBatchForward,
  PairBatchOptions,
  PerturbableSurface,
  ReferenceScore,
} from './model.js';
import { DEFAULT_MODEL_SEED, MODEL_SPECIFICATION_VERSION } from './model.js';
import { ITEM_EMBEDDINGS, USER_EMBEDDINGS } from './mf.js';
import { SparseRows } from './sparse-rows.js';
import type { SparseRowsByName } from './sparse-rows.js';
import { createTable, initializeTruncatedNormal } from './tables.js';
import type { ParameterTable } from './tables.js';
import { checkKnownOptions, checkPairs, checkUsers, collectIssues } from './validate.js';

/** The default {@link VisualBPRConfig.featureNormalization}. */
export const DEFAULT_FEATURE_NORMALIZATION: FeatureNormalization = 'centred';

/**
 * The default {@link VisualBPRConfig.featureNorm} for D-dimensional features: `1 / sqrt(D)`
 * (0.028 for MobileNetV2's 1280-d, 0.022 for ResNet-50's 2048-d). An Adagrad step moves each
 * element of E by about the learning rate, so `E c_i` moves by about `lr * ||c_i||_1`, which
 * is `lr * 0.8 * sqrt(D) * ||c_i||_2` for dense rows: rows of L2 norm `1 / sqrt(D)` make the
 * visual part move at the pace of an ID embedding, whatever D and the extractor's scale.
 * Measured (`pnpm bench vbpr-diagnosis`, ML-1M posters, 30 epochs): validation NDCG@20 0.121
 * (MF-BPR 0.120; raw features 0.088; centred rows of norm 1: 0.113), cold items ranked among
 * cold items at HR@10 0.180 (chance 0.092). Larger values train the visual part faster:
 * worth trying when the images are known to be informative.
 */
export function defaultFeatureNorm(dimension: number): number {
  return 1 / Math.sqrt(dimension);
}

/** The default {@link VisualBPRConfig.itemIdDropout}. */
export const DEFAULT_ITEM_ID_DROPOUT = 0.2;

/** Registered name of {@link VisualBPR}. */
export const VBPR_MODEL_NAME = 'vbpr';
/** Table and surface names of the visual models, in the papers' vocabulary. */
export const USER_VISUAL_EMBEDDINGS = 'userVisualEmbeddings';
export const FEATURE_PROJECTION = 'featureProjection';
export const VISUAL_BIAS = 'visualBias';
export const ITEM_FEATURES = 'itemFeatures';
/** The fixed PCA basis of {@link VisualBPRConfig.featureComponents} (`D x components`). */
export const FEATURE_BASIS = 'featureBasis';

/**
 * A trained model's ID embeddings that a VBPR can start from (`MatrixFactorization`
 * has this shape): {@link VisualBPR.fromMatrixFactorization} and
 * {@link VisualBPR.copyIdEmbeddingsFrom}.
 */
export interface IdEmbeddingSource {
  readonly numUsers: number;
  readonly numItems: number;
  readonly embeddingSize: number;
  readonly userEmbeddings: ParameterTable;
  readonly itemEmbeddings: ParameterTable;
}

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
  /**
   * How the item features are prepared before training (default `centred`):
   * - `centred`: subtract the mean feature row (over items that have features), then scale
   *   every row by one factor so the mean row norm is `featureNorm`. CNN features are
   *   non-negative and alike (MobileNetV2 posters: random pairs have cosine 0.62, rows norm
   *   26); centred, they differ (cosine 0.004), and a known norm keeps E's Adagrad steps,
   *   and AMR's epsilon, on the scale of the embeddings whatever the extractor.
   * - `unit`: each row scaled to norm `featureNorm` (no centring).
   * - `none`: the features as given.
   * Items without features (zero rows) stay zero. The mean and the factor are recorded in
   * the config (`featureMean`, `featureScale`), so {@link VisualBPR.prepareFeatures} applies the
   * same transform to the features of items added later.
   */
  readonly featureNormalization?: FeatureNormalization;
  /**
   * The mean row norm of the prepared features (`centred` and `unit`; default
   * {@link defaultFeatureNorm}: `1 / sqrt(D)`). Under Adagrad, E moves by about the learning rate per
   * element whatever its gradient's size, so `E c_i` moves in proportion to the features'
   * scale: this is the visual part's effective learning rate relative to the ID embeddings'.
   */
  readonly featureNorm?: number;
  /**
   * Reduce the features to this many principal components before `featureNormalization`
   * (PCA of the given features' non-zero rows, {@link principalComponents}; default: keep
   * all D). VBPR's feature products cost `batch x D x K` per step, so 128 components of
   * 1280-d MobileNetV2 features halve a VBPR epoch (ML-1M posters, a third of the users:
   * 3.8 s against 7.9 s) at the same validation NDCG@20 (0.1408 against 0.1406;
   * `bench/results/vbpr-tuning.json`), keeping 77% of the variance. The basis is a fixed
   * table (`featureBasis`), saved with the model; {@link VisualBPR.prepareFeatures} projects
   * new items' raw features onto it. AMR then perturbs the reduced features.
   * @minimum 1
   */
  readonly featureComponents?: number;
  /**
   * Probability that an item's ID embedding is dropped (treated as zero, and not updated) for
   * one training batch, so the visual part `E c_i` also learns to rank items on its own, on
   * the same scale as ID embeddings (default 0.2; 0 is the papers' VBPR). Cold-start items
   * have no ID embedding at test time; without this the visual part only learns a small
   * correction to `q_i`. Measured (ML-1M posters, a third of the users, VBPR 20 epochs from
   * MF, `bench/results/vbpr-diagnosis.json`): validation NDCG@20 0.1330 (0) / 0.1350 (0.2) /
   * 0.1341 (0.5); AUC of cold test items against 999 sampled negatives 0.609 / 0.832 /
   * 0.813; cold items ranked among cold items, HR@10 0.117 / 0.171 / 0.185 (chance 0.092);
   * warm test HR@10 0.367 / 0.372 / 0.361. The mask is a hash of the batch and the seed:
   * deterministic, the same for AMR's clean and perturbed passes, and unchanged by a resume.
   * Only training steps drop (`forwardPairs` with `training: true`, as trainers call it):
   * scoring, attacks and robustness sweeps see the whole model.
   */
  readonly itemIdDropout?: number;
  readonly seed?: number;
}

/** See {@link VisualBPRConfig.featureNormalization}. */
export type FeatureNormalization = 'centred' | 'unit' | 'none';

/**
 * The transform `featureNormalization` applies: `(c - mean) * scale` per non-zero row
 * (`unit` scales each row by its own norm instead; `none` is the identity).
 */
export interface FeatureTransform {
  readonly normalization: FeatureNormalization;
  /** Subtracted from every non-zero row (`centred`), else null. */
  readonly mean: Float32Array | null;
  /** Multiplies every row after centring (`centred`; 1 otherwise). */
  readonly scale: number;
  /** The (mean) row norm of prepared features: the `featureNorm` fitted with (1 for `none`). */
  readonly rowNorm: number;
}

/** Fits the transform of `normalization` on `features` (rows of zeros are ignored). */
export function fitFeatureTransform(
  features: { readonly data: Float32Array; readonly dimension: number },
  normalization: FeatureNormalization,
  featureNorm = 1,
): FeatureTransform {
  if (normalization === 'none') return { normalization, mean: null, scale: 1, rowNorm: 1 };
  if (normalization === 'unit')
    return { normalization, mean: null, scale: 1, rowNorm: featureNorm };
  const d = features.dimension;
  const rows = features.data.length / d;
  const sum = new Float64Array(d);
  let present = 0;
  for (let i = 0; i < rows; i++) {
    const row = features.data.subarray(i * d, (i + 1) * d);
    if (!row.some((v) => v !== 0)) continue;
    present++;
    for (let k = 0; k < d; k++) sum[k]! += row[k]!;
  }
  const mean = Float32Array.from(sum, (v) => (present > 0 ? v / present : 0));
  let normSum = 0;
  for (let i = 0; i < rows; i++) {
    const row = features.data.subarray(i * d, (i + 1) * d);
    if (!row.some((v) => v !== 0)) continue;
    let s = 0;
    for (let k = 0; k < d; k++) s += (row[k]! - mean[k]!) ** 2;
    normSum += Math.sqrt(s);
  }
  const meanNorm = present > 0 ? normSum / present : 0;
  return {
    normalization,
    mean,
    scale: meanNorm > 0 ? featureNorm / meanNorm : 1,
    rowNorm: featureNorm,
  };
}

/**
 * Applies a {@link FeatureTransform} to feature rows (zero rows stay zero), into `out` when
 * given (same length as `features.data`; may be `features.data` itself), else a new array.
 */
export function applyFeatureTransform(
  features: { readonly data: Float32Array; readonly dimension: number },
  transform: FeatureTransform,
  out?: Float32Array,
): Float32Array {
  const d = features.dimension;
  if (out && out.length !== features.data.length)
    throw new DataError(
      `the output holds ${out.length} values, the features ${features.data.length}`,
    );
  if (out && out !== features.data) out.set(features.data);
  out ??= Float32Array.from(features.data);
  if (transform.normalization === 'none') return out;
  if (transform.mean !== null && transform.mean.length !== d)
    throw new DataError(
      `the feature transform was fitted on ${transform.mean.length}-d features, these are ${d}-d`,
    );
  for (let i = 0; i < out.length / d; i++) {
    const row = out.subarray(i * d, (i + 1) * d);
    if (!row.some((v) => v !== 0)) continue;
    if (transform.normalization === 'unit') {
      let s = 0;
      for (let k = 0; k < d; k++) s += row[k]! * row[k]!;
      const n = Math.sqrt(s) / transform.rowNorm;
      for (let k = 0; k < d; k++) row[k] = row[k]! / n;
    } else {
      for (let k = 0; k < d; k++) row[k] = (row[k]! - transform.mean![k]!) * transform.scale;
    }
  }
  return out;
}

/** A resolved {@link VisualBPRConfig}. */
export interface ResolvedVisualBPRConfig {
  readonly embeddingSize: number;
  readonly userVisual: 'shared' | 'separate';
  readonly visualBias: boolean;
  readonly initStd: number;
  readonly projectionInitStd: number;
  readonly featureNormalization: FeatureNormalization;
  /** null: {@link defaultFeatureNorm} of the features' dimension. */
  readonly featureNorm: number | null;
  /** null: the features' own dimension. */
  readonly featureComponents: number | null;
  readonly itemIdDropout: number;
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
    featureNormalization: config.featureNormalization ?? DEFAULT_FEATURE_NORMALIZATION,
    featureNorm: config.featureNorm ?? null,
    featureComponents: config.featureComponents ?? null,
    itemIdDropout: config.itemIdDropout ?? DEFAULT_ITEM_ID_DROPOUT,
    seed: config.seed ?? DEFAULT_MODEL_SEED,
  };
  collectIssues((issue) => {
    checkKnownOptions(
      config,
      [
        'embeddingSize',
        'userVisual',
        'visualBias',
        'initStd',
        'projectionInitStd',
        'featureNormalization',
        'featureNorm',
        'featureComponents',
        'itemIdDropout',
        'seed',
        // Recorded by the model itself (the fitted transform), accepted back on restore.
        'featureMean',
        'featureScale',
        'featureBasisMean',
      ],
      'vbpr',
      issue,
    );
    if (!Number.isInteger(r.embeddingSize) || r.embeddingSize < 1)
      issue('embeddingSize', `must be a positive integer, got ${r.embeddingSize}`);
    if (r.userVisual !== 'shared' && r.userVisual !== 'separate')
      issue('userVisual', `must be shared or separate, got ${String(r.userVisual)}`);
    if (typeof r.visualBias !== 'boolean')
      issue('visualBias', `must be a boolean, got ${String(r.visualBias)}`);
    for (const key of ['initStd', 'projectionInitStd'] as const)
      if (!(Number.isFinite(r[key]) && r[key] >= 0))
        issue(key, `must be a finite number >= 0, got ${r[key]}`);
    if (r.featureNorm !== null && !(Number.isFinite(r.featureNorm) && r.featureNorm > 0))
      issue('featureNorm', `must be a finite number > 0, got ${r.featureNorm}`);
    if (
      r.featureComponents !== null &&
      !(Number.isInteger(r.featureComponents) && r.featureComponents >= 1)
    )
      issue('featureComponents', `must be a positive integer, got ${r.featureComponents}`);
    if (!['centred', 'unit', 'none'].includes(r.featureNormalization))
      issue(
        'featureNormalization',
        `must be centred, unit or none, got ${String(r.featureNormalization)}`,
      );
    if (!(Number.isFinite(r.itemIdDropout) && r.itemIdDropout >= 0 && r.itemIdDropout < 1))
      issue('itemIdDropout', `must be a number in [0, 1), got ${r.itemIdDropout}`);
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
  /** {@link VisualBPRConfig.itemIdDropout}. */
  readonly itemIdDropout: number;
  private readonly dropoutSeed: number;

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
    const recorded = config as {
      featureMean?: unknown;
      featureScale?: unknown;
      featureBasisMean?: unknown;
    };
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
    this.featureBasis = given.get(FEATURE_BASIS) ?? null;
    this.featureBasisMean = Array.isArray(recorded.featureBasisMean)
      ? Float32Array.from(recorded.featureBasisMean as number[])
      : null;
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
      if (r.featureComponents !== null && r.featureComponents < features.dimension) {
        // PCA first: the basis (D x components) and the mean it centres with are kept.
        const pca = principalComponents(features, {
          components: r.featureComponents,
          seed: r.seed,
        });
        const basis = createTable(FEATURE_BASIS, 'dense', features.dimension, pca.dimension);
        basis.values.set(pca.basis);
        this.featureBasis = basis;
        this.featureBasisMean = pca.mean;
        features = { data: pca.project(features), dimension: pca.dimension };
      }
      itemFeatures = createTable(ITEM_FEATURES, 'item', this.numItems, features.dimension);
      this.featureTransform = fitFeatureTransform(
        features,
        r.featureNormalization,
        r.featureNorm ?? defaultFeatureNorm(features.dimension),
      );
      applyFeatureTransform(features, this.featureTransform, itemFeatures.values);
    } else {
      // Restored: the table holds prepared features; the transform is the recorded one.
      this.featureTransform = {
        normalization: r.featureNormalization,
        mean: Array.isArray(recorded.featureMean)
          ? Float32Array.from(recorded.featureMean as number[])
          : null,
        scale: typeof recorded.featureScale === 'number' ? recorded.featureScale : 1,
        rowNorm:
          r.featureNormalization === 'none'
            ? 1
            : (r.featureNorm ?? defaultFeatureNorm(itemFeatures.dimension)),
      };
    }
    if (this.featureBasis && !this.featureBasisMean)
      throw new ConfigError([
        { path: 'featureBasisMean', message: 'a featureBasis table needs its recorded mean' },
      ]);
    this.config = {
      ...r,
      // The norm actually used (the default depends on D), so a restored model reports it.
      featureNorm: r.featureNormalization === 'none' ? null : this.featureTransform.rowNorm,
      featureComponents: this.featureBasis ? this.featureBasis.dimension : null,
      ...(this.featureBasisMean ? { featureBasisMean: Array.from(this.featureBasisMean) } : {}),
      ...(this.featureTransform.mean
        ? {
            featureMean: Array.from(this.featureTransform.mean),
            featureScale: this.featureTransform.scale,
          }
        : {}),
    };
    const d = itemFeatures.dimension;
    this.featureSize = d;
    this.itemIdDropout = r.itemIdDropout;
    this.dropoutSeed = r.seed;
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
      ...(this.featureBasis ? [this.featureBasis] : []),
    ];
    this.trainableTables = this.tables
      .filter((t) => t !== this.itemFeatures && t !== this.featureBasis)
      .map((t) => t.name);
    this.surfaces = [
      { name: USER_EMBEDDINGS, side: 'user', rows: this.numUsers, dimension: k },
      { name: ITEM_EMBEDDINGS, side: 'item', rows: this.numItems, dimension: k },
      {
        name: ITEM_FEATURES,
        side: 'item',
        rows: this.numItems,
        dimension: d,
        rowScale: this.featureTransform.rowNorm,
      },
    ];
  }

  /**
   * VBPR initialised from a trained MF (AMR section 4.1: "using the ID embeddings learned by
   * MF leads to better performance"): P and Q copied (cold-start items' Q zeroed), E (and
   * theta) freshly initialised.
   */
  static fromMatrixFactorization(
    mf: IdEmbeddingSource,
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
    model.copyIdEmbeddingsFrom(mf, train);
    return model;
  }

  /**
   * Copies a trained MF's user and item embeddings into this model's P and Q (the start of
   * {@link VisualBPR.fromMatrixFactorization}, for a VBPR built otherwise, e.g. from a
   * registry); with `train`, items without a training interaction get a zero Q row, as
   * cold-start items are scored.
   */
  copyIdEmbeddingsFrom(mf: IdEmbeddingSource, train?: InteractionMatrix): void {
    if (
      mf.numUsers !== this.numUsers ||
      mf.numItems !== this.numItems ||
      mf.embeddingSize !== this.embeddingSize
    )
      throw new ConfigError([
        {
          path: 'mf',
          message: `an MF of ${mf.numUsers} users x ${mf.numItems} items, K = ${mf.embeddingSize}, cannot start a VBPR of ${this.numUsers} x ${this.numItems}, K = ${this.embeddingSize}`,
        },
      ]);
    this.userEmbeddings.values.set(mf.userEmbeddings.values);
    this.itemEmbeddings.values.set(mf.itemEmbeddings.values);
    if (train) {
      const degrees = train.itemDegrees();
      const k = this.embeddingSize;
      for (let i = 0; i < this.numItems; i++)
        if (degrees[i] === 0) this.itemEmbeddings.values.fill(0, i * k, (i + 1) * k);
    }
  }

  /** The PCA basis of {@link VisualBPRConfig.featureComponents} (`D x components`), or null. */
  readonly featureBasis: ParameterTable | null;
  private readonly featureBasisMean: Float32Array | null;

  /** How the features given to the constructor were prepared (see `featureNormalization`). */
  readonly featureTransform: FeatureTransform;

  /**
   * Prepares raw features (e.g. of items added after training) exactly as this model's own
   * were prepared, so that `E c_i` means the same for them.
   */
  prepareFeatures(features: { data: Float32Array; dimension: number }): Float32Array {
    const basis = this.featureBasis;
    if (basis) {
      const d = basis.rows;
      const m = basis.dimension;
      if (features.dimension !== d)
        throw new DataError(
          `this model's features were reduced from ${d}-d raw features (featureComponents), these are ${features.dimension}-d`,
        );
      const reduced = projectRows(features, this.featureBasisMean!, basis.values, m);
      return applyFeatureTransform({ data: reduced, dimension: m }, this.featureTransform);
    }
    return applyFeatureTransform(features, this.featureTransform);
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
  featureSensitivity(): { readonly projectionNorm: number; readonly meanUserSensitivity: number } {
    const d = this.featureSize;
    const k = this.embeddingSize;
    const e = this.featureProjection.values;
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
    const users = (this.userVisualEmbeddings ?? this.userEmbeddings).values;
    let sum = 0;
    for (let u = 0; u < this.numUsers; u++) {
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
      meanUserSensitivity: this.numUsers > 0 ? sum / this.numUsers : 0,
    };
  }

  /** Rebuilds a model from a checkpoint's state (it adopts the state's tables, no copy). */
  static restore(state: ModelState): VisualBPR {
    return new VisualBPR(state, null, state.config as VisualBPRConfig, { tables: state.tables });
  }

  /**
   * The dense products of the batch step (`C E`, `C^T G`, `G E^T`): onnxruntime when
   * installed (set on first use of {@link VisualBPR.forwardPairs}, or by
   * {@link VisualBPR.useDenseProducts}), plain JS otherwise. The synchronous methods
   * (`score`, `pairScores`, `pairBackward`, `factors`) always use plain JS.
   */
  get denseProducts(): GemmBackendName | null {
    return this.gemm?.backend ?? null;
  }

  /** Runs the batch step's dense products on `gemm` (e.g. `createGemm({ backend: 'js' })`). */
  useDenseProducts(gemm: Gemm): void {
    this.gemm = gemm;
  }

  private gemm: Gemm | null = null;
  private gemmLoading: Promise<Gemm> | null = null;

  /**
   * The dense factors the evaluator ranks with: user `p_u` (`[p_u, theta_u]`), item
   * `fl32(q_i + fl32(c_i E))` (`[q_i, fl32(c_i E)]`), bias `fl32(c_i . beta')`.
   */
  factors(): ModelFactors {
    // Every item, in id order (itemSide then reads the feature table in place).
    const all = Int32Array.from({ length: this.numItems }, (_, i) => i);
    const { itemFactors, itemBias } = this.itemSide(all, true);
    const k = this.embeddingSize;
    let userFactors = this.userEmbeddings.values;
    if (!this.shared) {
      userFactors = new Float32Array(this.numUsers * 2 * k);
      const p = this.userEmbeddings.values;
      const h = this.userVisualEmbeddings!.values;
      for (let u = 0; u < this.numUsers; u++) {
        userFactors.set(p.subarray(u * k, u * k + k), u * 2 * k);
        userFactors.set(h.subarray(u * k, u * k + k), u * 2 * k + k);
      }
    }
    const dimension = this.shared ? k : 2 * k;
    return itemBias
      ? { userFactors, itemFactors, dimension, itemBias }
      : { userFactors, itemFactors, dimension };
  }

  /**
   * The float32 item factor rows (and biases) of `items`, in that order (see {@link factors});
   * `every`: `items` is every item in id order.
   */
  private itemSide(
    items: Int32Array,
    every = false,
  ): { itemFactors: Float32Array; itemBias?: Float32Array } {
    const k = this.embeddingSize;
    const d = this.featureSize;
    const n = items.length;
    const c = every ? this.itemFeatures.values : this.gatherFeatures(items, n);
    const visual = multiplyJs(c, n, d, this.featureProjection.values, d, k);
    const q = this.itemEmbeddings.values;
    const width = this.shared ? k : 2 * k;
    const itemFactors = new Float32Array(n * width);
    for (let s = 0; s < n; s++) {
      const i = items[s]!;
      for (let f = 0; f < k; f++) {
        if (this.shared) itemFactors[s * k + f] = q[i * k + f]! + visual[s * k + f]!;
        else {
          itemFactors[s * width + f] = q[i * k + f]!;
          itemFactors[s * width + k + f] = visual[s * k + f]!;
        }
      }
    }
    if (!this.visualBias) return { itemFactors };
    const beta = this.visualBias.values;
    const itemBias = new Float32Array(n);
    for (let s = 0; s < n; s++) {
      let acc = 0;
      for (let j = 0; j < d; j++) acc += c[s * d + j]! * beta[j]!;
      itemBias[s] = acc;
    }
    return { itemFactors, itemBias };
  }

  /** Rows `c_i` of `items` (`n x D`, float32), plus a perturbation of the features when given. */
  private gatherFeatures(items: Int32Array, n: number, delta?: SparseRows): Float32Array {
    const d = this.featureSize;
    const features = this.itemFeatures.values;
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

  score(users: Int32Array, items: Int32Array): Float64Array {
    checkPairs(this, users, items, users.length);
    const { unique, slot } = uniqueRows(items, items.length);
    const f = this.itemSide(unique);
    const width = this.shared ? this.embeddingSize : 2 * this.embeddingSize;
    const p = this.userEmbeddings.values;
    const h = this.userVisualEmbeddings?.values ?? null;
    const k = this.embeddingSize;
    const out = new Float64Array(users.length);
    for (let t = 0; t < users.length; t++) {
      const u = users[t]!;
      const at = slot[t]! * width;
      let s = 0;
      for (let x = 0; x < k; x++) s += p[u * k + x]! * f.itemFactors[at + x]!;
      if (h) for (let x = 0; x < k; x++) s += h[u * k + x]! * f.itemFactors[at + k + x]!;
      out[t] = f.itemBias ? s + f.itemBias[slot[t]!]! : s;
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

  /** Training-time scores (the batch step with plain-JS products). */
  pairScores(
    users: Int32Array,
    items: Int32Array,
    count: number,
    perturbations?: SparseRowsByName,
  ): Float64Array {
    checkPairs(this, users, items, count);
    return (this.forward(jsGemm, users, items, count, perturbations) as PairBatchForward).scores;
  }

  /** The batch step's backward pass with plain-JS products (the one VBPR gradient). */
  pairBackward(
    users: Int32Array,
    items: Int32Array,
    count: number,
    dScores: Float64Array,
    gradients: SparseRowsByName,
    perturbations?: SparseRowsByName,
  ): void {
    checkPairs(this, users, items, count);
    const pass = this.forward(jsGemm, users, items, count, perturbations) as PairBatchForward;
    void pass.backward(dScores, gradients);
  }

  /**
   * Which of a training batch's unique items have their ID embedding dropped
   * ({@link VisualBPRConfig.itemIdDropout}): a hash of the seed, the batch's pairs and the
   * item, so the mask depends on nothing but the batch. Null when nothing is dropped.
   */
  private droppedItems(
    users: Int32Array,
    unique: Int32Array,
    slot: Int32Array,
    count: number,
  ): Uint8Array | null {
    const rate = this.itemIdDropout;
    if (rate <= 0) return null;
    let h = mix32(0x9e3779b9 ^ this.dropoutSeed);
    for (let t = 0; t < count; t++) h = mix32(h ^ users[t]!) ^ mix32(h + unique[slot[t]!]!);
    const out = new Uint8Array(unique.length);
    const threshold = rate * 2 ** 32;
    for (let s = 0; s < unique.length; s++)
      if (mix32(h ^ mix32(unique[s]! + 1)) >>> 0 < threshold) out[s] = 1;
    return out;
  }

  /**
   * The batch step (Model contract v2): the batch's unique items' features are gathered once
   * and `C E` runs as one dense product; the backward pass computes `C^T G` (the gradient of
   * E) and, when asked, `G E^T` (the gradient w.r.t. the features, AMR's Gamma) as products
   * too. Dense products run on onnxruntime when installed.
   */
  forwardPairs(
    users: Int32Array,
    items: Int32Array,
    count: number,
    perturbations?: SparseRowsByName,
    options?: PairBatchOptions,
  ): PairBatchForward | Promise<PairBatchForward> {
    checkPairs(this, users, items, count);
    const training = options?.training === true;
    if (this.gemm) return this.forward(this.gemm, users, items, count, perturbations, training);
    this.gemmLoading ??= createGemm();
    return this.gemmLoading.then((gemm) => {
      this.gemm ??= gemm;
      return this.forward(this.gemm, users, items, count, perturbations, training);
    });
  }

  /**
   * `y = p_u . q_i + h_u . (c_i E) (+ c_i . beta')` for a batch of pairs, with `h_u = p_u`
   * (shared) or theta_u and every surface optionally perturbed; synchronous when `gemm` is.
   */
  private forward(
    gemm: Gemm,
    users: Int32Array,
    items: Int32Array,
    count: number,
    perturbations?: SparseRowsByName,
    training = false,
  ): PairBatchForward | Promise<PairBatchForward> {
    const k = this.embeddingSize;
    const d = this.featureSize;
    const { unique, slot } = uniqueRows(items, count);
    const nI = unique.length;
    const dropped = training ? this.droppedItems(users, unique, slot, count) : null;
    const dp = perturbations?.get(USER_EMBEDDINGS);
    const dq = perturbations?.get(ITEM_EMBEDDINGS);
    const C = this.gatherFeatures(unique, nI, perturbations?.get(ITEM_FEATURES));
    const E = this.featureProjection.values;
    return andThen(gemm.multiply(C, nI, d, E, d, k), (V) => {
      const P = this.userEmbeddings.values;
      const Q = this.itemEmbeddings.values;
      const H = this.userVisualEmbeddings?.values ?? null;
      const beta = this.visualBias?.values ?? null;
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
      ): void | Promise<void> => {
        const rows = (name: string, dimension: number, capacity = 1024): SparseRows => {
          let r = gradients.get(name);
          if (!r) gradients.set(name, (r = new SparseRows(dimension, capacity)));
          return r;
        };
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
      };
      return { scores, backward };
    });
  }
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
function offsetsOf(rows: SparseRows, ids: Int32Array | null, count: number): Int32Array {
  const offsets = new Int32Array(count);
  for (let t = 0; t < count; t++) offsets[t] = rows.ensure(ids ? ids[t]! : t);
  return offsets;
}

/** The distinct values of `ids[0..count)` in order of first appearance, and each id's slot. */
function uniqueRows(ids: Int32Array, count: number): { unique: Int32Array; slot: Int32Array } {
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

/** float64 sums of float32 factors in order, plus the bias: the evaluator's canonical score. */
function canonicalScores(
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

/**
 * {@link VisualBPR.featureSensitivity} of a model that has a visual part, else `null`: what a
 * caller that only knows the Model contract (the CLI's run report) asks.
 */
export function featureSensitivityOf(
  model: Model,
): { readonly projectionNorm: number; readonly meanUserSensitivity: number } | null {
  return model instanceof VisualBPR ? model.featureSensitivity() : null;
}
