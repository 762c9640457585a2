/** Visually-aware BPR (VBPR) and its parts: config, feature preparation, batch step, warm start, diagnostics. */
export {
  DEFAULT_FEATURE_NORMALIZATION,
  DEFAULT_ITEM_ID_DROPOUT,
  FEATURE_BASIS,
  FEATURE_PROJECTION,
  ITEM_FEATURES,
  USER_VISUAL_EMBEDDINGS,
  VBPR_MODEL_NAME,
  VISUAL_BIAS,
  defaultFeatureNorm,
  resolveVisualBPRConfig,
} from './config.js';
export type {
  FeatureNormalization,
  IdEmbeddingSource,
  ResolvedVisualBPRConfig,
  VisualBPRConfig,
} from './config.js';
export { applyFeatureTransform, fitFeatureTransform } from './feature-transform.js';
export type { FeatureTransform } from './feature-transform.js';
export type { FeatureSensitivity } from './diagnostics.js';
export { vbprReferenceScore } from './reference.js';
export { VisualBPR, featureSensitivityOf } from './model.js';
