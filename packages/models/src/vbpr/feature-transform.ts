import { ConfigError, DataError, principalComponents, projectRows } from '@advrec/data';
import type { JsonObject } from '../model.js';
import { createTable } from '../tables.js';
import type { ParameterTable } from '../tables.js';
import { FEATURE_BASIS, ITEM_FEATURES, defaultFeatureNorm } from './config.js';
import type { FeatureNormalization, ResolvedVisualBPRConfig } from './config.js';

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

/** The item feature table of a VBPR and how it was prepared. @internal */
export interface PreparedItemFeatures {
  readonly itemFeatures: ParameterTable;
  readonly featureBasis: ParameterTable | null;
  readonly featureBasisMean: Float32Array | null;
  readonly featureTransform: FeatureTransform;
}

/**
 * A new model's features checked (shape, finite values), reduced by PCA when
 * `featureComponents` asks, and normalised into the item feature table; or a restored
 * model's table with its recorded transform. @internal
 */
export function prepareItemFeatures(
  numItems: number,
  features: { data: Float32Array; dimension: number } | null,
  r: ResolvedVisualBPRConfig,
  recorded: { featureMean?: unknown; featureScale?: unknown; featureBasisMean?: unknown },
  given: ReadonlyMap<string, ParameterTable>,
): PreparedItemFeatures {
  let itemFeatures = given.get(ITEM_FEATURES) ?? null;
  let featureBasis = given.get(FEATURE_BASIS) ?? null;
  let featureBasisMean: Float32Array | null = Array.isArray(recorded.featureBasisMean)
    ? Float32Array.from(recorded.featureBasisMean as number[])
    : null;
  let featureTransform: FeatureTransform;
  if (!itemFeatures) {
    if (!features)
      throw new ConfigError([{ path: 'features', message: 'VBPR needs an item feature matrix' }]);
    if (features.data.length !== numItems * features.dimension)
      throw new DataError(
        `item features have ${features.data.length} values, expected ${numItems} items x ${features.dimension}`,
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
      featureBasis = basis;
      featureBasisMean = pca.mean;
      features = { data: pca.project(features), dimension: pca.dimension };
    }
    itemFeatures = createTable(ITEM_FEATURES, 'item', numItems, features.dimension);
    featureTransform = fitFeatureTransform(
      features,
      r.featureNormalization,
      r.featureNorm ?? defaultFeatureNorm(features.dimension),
    );
    applyFeatureTransform(features, featureTransform, itemFeatures.values);
  } else {
    // Restored: the table holds prepared features; the transform is the recorded one.
    featureTransform = {
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
  return { itemFeatures, featureBasis, featureBasisMean, featureTransform };
}

/**
 * The model's config as recorded in checkpoints: the resolved options, the feature norm
 * actually used (the default depends on D) and the fitted transform, so a restored model
 * prepares features the same way. @internal
 */
export function recordedConfig(
  r: ResolvedVisualBPRConfig,
  prepared: PreparedItemFeatures,
): JsonObject {
  const { featureTransform, featureBasis, featureBasisMean } = prepared;
  if (featureBasis && !featureBasisMean)
    throw new ConfigError([
      { path: 'featureBasisMean', message: 'a featureBasis table needs its recorded mean' },
    ]);
  return {
    ...r,
    featureNorm: r.featureNormalization === 'none' ? null : featureTransform.rowNorm,
    featureComponents: featureBasis ? featureBasis.dimension : null,
    ...(featureBasisMean ? { featureBasisMean: Array.from(featureBasisMean) } : {}),
    ...(featureTransform.mean
      ? { featureMean: Array.from(featureTransform.mean), featureScale: featureTransform.scale }
      : {}),
  };
}

/**
 * Raw features (e.g. of items added after training) prepared as the model's own were: the
 * PCA projection when it has one, then its transform. @internal
 */
export function prepareRawFeatures(
  features: { data: Float32Array; dimension: number },
  model: {
    readonly featureBasis: ParameterTable | null;
    readonly featureBasisMean: Float32Array | null;
    readonly featureTransform: FeatureTransform;
  },
): Float32Array {
  const basis = model.featureBasis;
  if (basis) {
    const d = basis.rows;
    const m = basis.dimension;
    if (features.dimension !== d)
      throw new DataError(
        `this model's features were reduced from ${d}-d raw features (featureComponents), these are ${features.dimension}-d`,
      );
    const reduced = projectRows(features, model.featureBasisMean!, basis.values, m);
    return applyFeatureTransform({ data: reduced, dimension: m }, model.featureTransform);
  }
  return applyFeatureTransform(features, model.featureTransform);
}
