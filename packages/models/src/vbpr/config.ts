import { DEFAULT_MODEL_SEED } from '../model.js';
import type { ParameterTable } from '../tables.js';
import { checkKnownOptions, collectIssues } from '../validate.js';

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
