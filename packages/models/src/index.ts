/**
 * `@advrec/models`: the Model contract (named parameter tables, perturbable surfaces,
 * scoring, pair forward/backward with perturbations, tfjs reference definition,
 * save/restore by registered name), matrix factorisation and ItemPop.
 *
 * @packageDocumentation
 */
export {
  DEFAULT_MODEL_SEED,
  MODEL_SPECIFICATION_VERSION,
  SUPPORTED_MODEL_SPECIFICATION_VERSIONS,
} from './model.js';
export type {
  JsonObject,
  JsonValue,
  Model,
  ModelDimensions,
  ModelFactors,
  ModelSpecificationVersion,
  ModelState,
  PairBatchForward,
  PairBatchOptions,
  PerturbableSurface,
  ReferenceScore,
  Tfjs,
} from './model.js';
export {
  cloneTable,
  createTable,
  initializeGlorotUniform,
  initializeTruncatedNormal,
} from './tables.js';
export type { ParameterTable, Side, TableSide } from './tables.js';
export { SparseRows } from './sparse-rows.js';
export { absoluteEpsilon, resolveAttackTarget } from './attack-target.js';
export type { AttackTarget } from './attack-target.js';
export { forwardPairs } from './batch.js';
export type { SparseRowsByName } from './sparse-rows.js';
export {
  ITEM_EMBEDDINGS,
  ITEM_BIAS,
  MF_MODEL_NAME,
  MatrixFactorization,
  USER_EMBEDDINGS,
  mfReferenceScore,
  resolveMatrixFactorizationConfig,
} from './mf.js';
export type { MatrixFactorizationConfig, ResolvedMatrixFactorizationConfig } from './mf.js';
export { ITEM_POP_MODEL_NAME, ItemPop } from './item-pop.js';
export {
  DEFAULT_FEATURE_NORMALIZATION,
  DEFAULT_ITEM_ID_DROPOUT,
  FEATURE_BASIS,
  FEATURE_PROJECTION,
  ITEM_FEATURES,
  USER_VISUAL_EMBEDDINGS,
  VBPR_MODEL_NAME,
  VISUAL_BIAS,
  VisualBPR,
  applyFeatureTransform,
  defaultFeatureNorm,
  featureSensitivityOf,
  fitFeatureTransform,
  resolveVisualBPRConfig,
  vbprReferenceScore,
} from './vbpr/index.js';
export type {
  FeatureNormalization,
  FeatureTransform,
  IdEmbeddingSource,
  ResolvedVisualBPRConfig,
  VisualBPRConfig,
} from './vbpr/index.js';
export {
  createModel,
  getModelFactory,
  listModels,
  registerModel,
  restoreModel,
} from './registry.js';
export type { ModelContext, ModelFactory } from './registry.js';
export {
  parseCheckpoint,
  readCheckpoint,
  serializeCheckpoint,
  writeCheckpoint,
} from './checkpoint.js';
export type { Checkpoint, CheckpointedModel, ReadCheckpointOptions } from './checkpoint.js';
export {
  SEQUENCE_ITEM_TABLE,
  SEQUENTIAL_MODEL_SPECIFICATION_VERSION,
  getSequentialModelFactory,
  isSequentialModel,
  matMulExplicitGradient,
  registerSequentialModel,
  resolveModelOptions,
  restoreTables,
  seededDropout,
  sequentialModelNames,
  tfjsPassGradients,
} from './sequential.js';
export type {
  ModelOptionSpec,
  SequenceEncoder,
  SequenceEncoderInputs,
  SequenceGradientKernel,
  SequenceKernelContext,
  SequencePass,
  SequencePassGradients,
  SequentialModel,
  SequentialModelContext,
  SequentialModelFactory,
} from './sequential.js';
export {
  ChunkedSequenceKernel,
  KERNEL_CHUNK_SEQUENCES,
  applyDropout,
  columnSums,
  nextItemLoss,
  tableReader,
} from './sequence-kernel.js';
export type { ChunkedSequenceKernelOptions, CreatePassKernel } from './sequence-kernel.js';
export { builtModule, startKernelWorkers, workerErrorMessage } from './workers.js';
export { SequentialModelBase } from './sequential-base.js';
export type { SequentialModelBaseConfig, SequentialModelParts } from './sequential-base.js';
export { TfjsModel, registerTfjsModel } from './tfjs-model.js';
export type { TfjsModelDefinition, TfjsTableSpec } from './tfjs-model.js';
export {
  SAFETENSORS_FORMAT,
  isSafetensors,
  parseSafetensors,
  serializeSafetensors,
} from './safetensors.js';
