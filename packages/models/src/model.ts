import type * as tfc from '@tensorflow/tfjs-core';
import type { ParameterTable, Side } from './tables.js';
import type { SparseRowsByName } from './sparse-rows.js';

/**
 * The version of the Model contract implemented by this package. v2 adds the optional
 * batch-level step ({@link Model.forwardPairs}) and dense factors ({@link Model.factors});
 * a v1 model (neither) is still accepted everywhere: see {@link SUPPORTED_MODEL_SPECIFICATION_VERSIONS}.
 */
export const MODEL_SPECIFICATION_VERSION = 'v2';

/** The initialisation seed of the built-in models when their config gives none. */
export const DEFAULT_MODEL_SEED = 0;

/** Contract versions this package accepts (models and model factories). */
export const SUPPORTED_MODEL_SPECIFICATION_VERSIONS = ['v1', 'v2'] as const;

/** A Model contract version this package accepts. */
export type ModelSpecificationVersion = (typeof SUPPORTED_MODEL_SPECIFICATION_VERSIONS)[number];

/** The `@tensorflow/tfjs-core` namespace (any backend), as passed to reference definitions. */
export type Tfjs = typeof tfc;

/** A JSON value (configs and checkpoint metadata are JSON). */
export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * A part of the model an adversary may perturb, in the papers' vocabulary:
 * `userEmbeddings` (P), `itemEmbeddings` (Q), `itemFeatures` (c_i in AMR).
 * The perturbation is a vector per row with a norm bound per row (APR footnote 1).
 */
export interface PerturbableSurface {
  readonly name: string;
  readonly side: Side;
  readonly rows: number;
  readonly dimension: number;
  /**
   * The surface's own scale, for a surface that is fixed input (VBPR's prepared item
   * features: their mean row norm): the unit of an epsilon given relative to the surface
   * ({@link resolveAttackTarget}). Absent: epsilons on this surface are absolute, as APR's are
   * on the embeddings.
   */
  readonly rowScale?: number;
  /**
   * The score `s(u, i)` is affine in this surface's row of its side (the user's row for a
   * user-side surface, the item's for an item-side one), its gradient there depends only on
   * the other side (the item, resp. the user), and the row moves no other user's or item's
   * score: MF's and VBPR's embeddings, VBPR's prepared item features. Then the worst case
   * under a norm bound per row has a closed form, which the metrics package's
   * `worstCaseBounds` computes exactly (item side) or bounds with a certificate (user side).
   * Absent: no such claim (NeuMF, sequential and plugin models).
   */
  readonly affine?: boolean;
}

/**
 * The reference definition of a model in tfjs-core ops, as a function of the rows the
 * batch gathered from each table (`users` holds the user-side tables' rows of the pairs'
 * users, `items` the item-side tables' rows of the pairs' items; every tensor is
 * `pairs x dimension`; `dense` holds the dense tables whole, e.g. the feature projection),
 * returning the pairs' scores. Perturbations of surfaces are added to the gathered rows
 * before the call (item features are an item-side table that is not trainable). It is the test oracle of every fused
 * kernel and what the generic trainer differentiates for plugin models.
 */
export type ReferenceScore = (
  tf: Tfjs,
  users: Readonly<Record<string, tfc.Tensor2D>>,
  items: Readonly<Record<string, tfc.Tensor2D>>,
  dense: Readonly<Record<string, tfc.Tensor2D>>,
) => tfc.Tensor1D;

/**
 * Dense factors of a model whose score is `userFactors[u] . itemFactors[i] + itemBias[i]`
 * (summed in float64 in order, then the bias): the evaluator then ranks with GEMMs.
 */
export interface ModelFactors {
  /** `numUsers x dimension`, row-major. */
  readonly userFactors: Float32Array;
  /** `numItems x dimension`, row-major. */
  readonly itemFactors: Float32Array;
  readonly dimension: number;
  /** Optional per-item additive term, length `numItems`. */
  readonly itemBias?: Float32Array | undefined;
}

/**
 * A forward pass over a mini-batch of pairs, kept for its backward pass (Model contract
 * v2, {@link Model.forwardPairs}).
 */
/** How a batch step is used ({@link Model.forwardPairs}). */
export interface PairBatchOptions {
  /**
   * True for a training step (trainers set it): a model may then apply its training-only
   * transforms, such as VBPR's item-ID dropout. Attacks, robustness sweeps and tests leave it
   * unset, so they see the model as it scores.
   */
  readonly training?: boolean;
}

export interface PairBatchForward {
  /** Scores of the batch's pairs (at the perturbed parameters when perturbations were given). */
  readonly scores: Float64Array;
  /**
   * Adds the gradient of `sum_t dScores[t] * score_t` into `gradients`, exactly as
   * {@link Model.pairBackward} would. `surfaceGradients` names the surfaces that are not
   * trainable tables (item features) whose gradient is wanted (default: all of them); a
   * model may skip the others' (VBPR then saves a `G E^T` product).
   */
  backward(
    dScores: Float64Array,
    gradients: SparseRowsByName,
    surfaceGradients?: readonly string[],
  ): void | Promise<void>;
}

/** What a checkpoint stores to rebuild a model through the registry. */
export interface ModelState {
  readonly modelName: string;
  readonly specificationVersion: string;
  readonly config: JsonObject;
  readonly numUsers: number;
  readonly numItems: number;
  readonly tables: readonly ParameterTable[];
}

/**
 * The Model contract. Parameters are named tables (the single source of truth, trained in
 * place); scoring satisfies the evaluator's `Scorer`; forward and backward work on pairs
 * (a BPR triple is two pairs sharing the user) with optional perturbations on the
 * model's surfaces.
 */
export interface Model {
  readonly specificationVersion: ModelSpecificationVersion;
  /** The name the model is registered under (checkpoints store it). */
  readonly modelName: string;
  /** The resolved configuration (checkpoints store it). */
  readonly config: JsonObject;
  readonly numUsers: number;
  readonly numItems: number;
  /** Every parameter table, trainable or not (checkpoints store them all). */
  readonly tables: readonly ParameterTable[];
  /** Names of the tables the trainer updates. */
  readonly trainableTables: readonly string[];
  /** What an adversary may perturb. */
  readonly surfaces: readonly PerturbableSurface[];
  /** The reference definition in tfjs-core ops (absent for models with nothing to train). */
  readonly reference?: ReferenceScore | undefined;

  /** Scores of the pairs `(users[t], items[t])`. */
  score(users: Int32Array, items: Int32Array): Float64Array;
  /** Scores of every item for each user of the block, row-major `users.length x numItems`. */
  scoreAll(users: Int32Array, out?: Float64Array): Float64Array;
  /**
   * Scores of the first `count` pairs, with `perturbations` (surface name -> rows; absent
   * rows are unperturbed) added to the surfaces.
   */
  pairScores(
    users: Int32Array,
    items: Int32Array,
    count: number,
    perturbations?: SparseRowsByName,
  ): Float64Array;
  /**
   * Backward pass of `sum_t dScores[t] * score(users[t], items[t])` at the (perturbed)
   * parameters: adds the gradient of every trainable table's touched rows into
   * `gradients` (keyed by table name; a missing entry is created; dense tables get all
   * their rows). For embedding surfaces, the gradient w.r.t. the perturbation is the
   * gradient w.r.t. the table rows; a surface that is not a trainable table (item
   * features) gets its gradient under the surface name.
   */
  pairBackward(
    users: Int32Array,
    items: Int32Array,
    count: number,
    dScores: Float64Array,
    gradients: SparseRowsByName,
    perturbations?: SparseRowsByName,
  ): void;
  /**
   * Contract v2, optional: the batch-level step. Forward over a whole mini-batch of pairs
   * (the trainer passes a BPR batch as `[users; users]` x `[positives; negatives]`), kept
   * for its backward pass; it may answer with a Promise. A model with dense products (VBPR's
   * `E c_i`) de-duplicates the batch's rows and runs them as GEMMs here; its gradient must
   * equal {@link Model.pairBackward}'s (the contract suite checks both against the tfjs
   * reference). Without it, trainers and attacks use `pairScores` / `pairBackward` (see
   * `forwardPairs` in this package).
   */
  forwardPairs?(
    users: Int32Array,
    items: Int32Array,
    count: number,
    perturbations?: SparseRowsByName,
    options?: PairBatchOptions,
  ): PairBatchForward | Promise<PairBatchForward>;
  /** Contract v2, optional: dense factors, when scores are inner products (ranking by GEMM). */
  factors?(): ModelFactors;
}

/** Sizes every model needs at creation. */
export interface ModelDimensions {
  readonly numUsers: number;
  readonly numItems: number;
}
