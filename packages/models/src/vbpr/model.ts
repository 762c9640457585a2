import { ConfigError } from '@advrec/data';
import type { InteractionMatrix } from '@advrec/data';
import { createGemm, jsGemm } from '@advrec/onnx';
import type { Gemm, GemmBackendName } from '@advrec/onnx';
import type {
  JsonObject,
  Model,
  ModelFactors,
  ModelState,
  PairBatchForward,
  PairBatchOptions,
  PerturbableSurface,
} from '../model.js';
import { MODEL_SPECIFICATION_VERSION } from '../model.js';
import { ITEM_EMBEDDINGS, USER_EMBEDDINGS } from '../mf.js';
import type { SparseRowsByName } from '../sparse-rows.js';
import type { ParameterTable } from '../tables.js';
import { checkPairs, checkUsers } from '../validate.js';
import { uniqueRows, vbprForward } from './batch-step.js';
import { ITEM_FEATURES, VBPR_MODEL_NAME, resolveVisualBPRConfig } from './config.js';
import type { IdEmbeddingSource, VisualBPRConfig } from './config.js';
import { featureSensitivity } from './diagnostics.js';
import type { FeatureSensitivity } from './diagnostics.js';
import { canonicalScores, itemSide, vbprFactors } from './factors.js';
import { prepareItemFeatures, prepareRawFeatures, recordedConfig } from './feature-transform.js';
import type { FeatureTransform } from './feature-transform.js';
import { vbprReferenceScore } from './reference.js';
import { copyIdEmbeddings, tableLookup, vbprParameterTables } from './warm-start.js';

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
  /** The item-ID dropout mask's seed. @internal */
  readonly dropoutSeed: number;

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
    const take = tableLookup(given);
    const prepared = prepareItemFeatures(this.numItems, features, r, recorded, given);
    const itemFeatures = prepared.itemFeatures;
    this.featureBasis = prepared.featureBasis;
    this.featureBasisMean = prepared.featureBasisMean;
    this.featureTransform = prepared.featureTransform;
    this.config = recordedConfig(r, prepared);
    const d = itemFeatures.dimension;
    this.featureSize = d;
    this.itemIdDropout = r.itemIdDropout;
    this.dropoutSeed = r.seed;
    this.itemFeatures = itemFeatures;
    const own = vbprParameterTables(
      { numUsers: this.numUsers, numItems: this.numItems, featureSize: d, shared: this.shared },
      r,
      take,
      options.train,
    );
    this.userEmbeddings = own.userEmbeddings;
    this.itemEmbeddings = own.itemEmbeddings;
    this.userVisualEmbeddings = own.userVisualEmbeddings;
    this.featureProjection = own.featureProjection;
    this.visualBias = own.visualBias;
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
      // The score is affine in each: p_u . (q_i + E c_i) + theta_u . E c_i + beta' c_i.
      { name: USER_EMBEDDINGS, side: 'user', rows: this.numUsers, dimension: k, affine: true },
      { name: ITEM_EMBEDDINGS, side: 'item', rows: this.numItems, dimension: k, affine: true },
      {
        name: ITEM_FEATURES,
        side: 'item',
        rows: this.numItems,
        dimension: d,
        rowScale: this.featureTransform.rowNorm,
        affine: true,
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
    copyIdEmbeddings(this, mf, train);
  }

  /** The PCA basis of {@link VisualBPRConfig.featureComponents} (`D x components`), or null. */
  readonly featureBasis: ParameterTable | null;
  /** The mean the PCA basis centres with. @internal */
  readonly featureBasisMean: Float32Array | null;

  /** How the features given to the constructor were prepared (see `featureNormalization`). */
  readonly featureTransform: FeatureTransform;

  /**
   * Prepares raw features (e.g. of items added after training) exactly as this model's own
   * were prepared, so that `E c_i` means the same for them.
   */
  prepareFeatures(features: { data: Float32Array; dimension: number }): Float32Array {
    return prepareRawFeatures(features, this);
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
  featureSensitivity(): FeatureSensitivity {
    return featureSensitivity(this);
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
    return vbprFactors(this);
  }

  score(users: Int32Array, items: Int32Array): Float64Array {
    checkPairs(this, users, items, users.length);
    const { unique, slot } = uniqueRows(items, items.length);
    const f = itemSide(this, unique);
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
    return (vbprForward(this, jsGemm, users, items, count, perturbations) as PairBatchForward)
      .scores;
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
    const pass = vbprForward(this, jsGemm, users, items, count, perturbations) as PairBatchForward;
    void pass.backward(dScores, gradients);
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
    if (this.gemm)
      return vbprForward(this, this.gemm, users, items, count, perturbations, training);
    this.gemmLoading ??= createGemm();
    return this.gemmLoading.then((gemm) => {
      this.gemm ??= gemm;
      return vbprForward(this, this.gemm, users, items, count, perturbations, training);
    });
  }
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
