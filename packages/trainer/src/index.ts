/**
 * `@advrec/trainer`: BPR pre-training then adversarial training (APR, AMR) of any model of
 * the Model contract. Engines come from providers ({@link selectEngineProvider}): the fused
 * MF kernel, the generic engine over the contract, or a plugin's.
 *
 * @packageDocumentation
 */
export { maxThreads, resolveTrainConfig } from './config.js';
export type {
  AdversarialConfig,
  ResolvedTrainConfig,
  TableTrainConfig,
  TrainConfig,
  ValidationConfig,
} from './config.js';
export {
  EpochTotals,
  getEngineProvider,
  listEngineProviders,
  registerEngineProvider,
  selectEngineProvider,
} from './engine.js';
export type {
  BatchTotals,
  Engine,
  EngineContext,
  EngineInfo,
  EngineProvider,
  EngineSupport,
  EpochStats,
} from './engine.js';
export { FUSED_MF_ADVERSARIES, fusedMfEngineProvider, genericEngineProvider } from './providers.js';
export { MfEngine } from './mf-engine.js';
export type { MfEngineOptions, MfTables } from './mf-engine.js';
export { GenericEngine } from './generic-engine.js';
export type { GenericEngineOptions } from './generic-engine.js';
export {
  DEFAULT_DENSE_ADAM,
  adamRate,
  adamStep,
  applySparseUpdate,
  createOptimizerState,
  optimizerTables,
  resolveOptimizerConfig,
} from './optimizer.js';
export type {
  DenseAdamConfig,
  OptimizerConfig,
  OptimizerName,
  OptimizerState,
  ResolvedOptimizerConfig,
} from './optimizer.js';
export { Trainer, TrainingDivergedError } from './trainer.js';
export type {
  EpochEvent,
  PhaseOptions,
  PhaseProgress,
  PhaseResult,
  PhaseTimings,
  TrainCallbacks,
  ValidationEvent,
} from './trainer.js';
export { configForModel, trainSchedule, trainStage } from './schedule.js';
export type {
  ScheduleCallbacks,
  ScheduleOptions,
  SchedulePlan,
  ScheduleResult,
  ScheduleResume,
  ScheduleStage,
  ScheduleStageName,
  StageOptions,
  StageResult,
  WarmStartSummary,
} from './schedule.js';
export { loadTfjs } from './backend.js';
export type { TfjsRuntime } from './backend.js';
/** Moved to `@advrec/models`; re-exported here so existing imports keep working. */
export { TfjsModel, registerTfjsModel } from '@advrec/models';
export type { TfjsModelDefinition, TfjsTableSpec } from '@advrec/models';
export {
  AMR_GRID_LIMITS,
  AMR_PAPER_GRID,
  runAmrExperiment,
  runAprExperiment,
  trainAmrChain,
} from './recipes.js';
export type {
  AmrChainOptions,
  AmrChainResult,
  AprExperimentOptions,
  AprExperimentResult,
  ExperimentArm,
  ExperimentOptions,
  ExperimentResult,
  TuningWarning,
} from './recipes.js';
/** Moved to `@advrec/models` (the definition of a pass); re-exported here. */
export { tfjsPassGradients } from '@advrec/models';
export {
  SEQUENCE_ENGINES,
  chooseSequenceKernel,
  tfjsSequenceKernel,
  trainSequentialModel,
} from './sequential.js';
export { encodeSequences } from './sequence-pass.js';
export {
  evaluateSequential,
  hitRateAndNdcg,
  sequenceCandidates,
  sequenceScorer,
  sequenceStates,
} from './sequential-evaluation.js';
export type {
  HitRateAndNdcg,
  SequenceEvaluationOptions,
  SequenceEvaluationSet,
} from './sequential-evaluation.js';
export { craftSequencePerturbation, itemSurfaceOf } from './sequential-attack.js';
export type { SequencePerturbationOptions } from './sequential-attack.js';
export {
  compareSequentialArms,
  evaluateSequentialArm,
  itemEmbeddingCosine,
  meanItemRowNorm,
  runAtsrecExperiment,
} from './atsrec-recipe.js';
export type {
  AtsrecExperiment,
  AtsrecExperimentOptions,
  AtsrecHooks,
  AtsrecTrainingSettings,
  PairedChange,
  SequenceRobustnessPoint,
  SequentialArm,
  SequentialArmEvaluation,
  SequentialComparison,
} from './atsrec-recipe.js';
export type {
  SequenceAdamConfig,
  SequenceAdversarialConfig,
  SequenceEngineName,
  SequenceEpochEvent,
  SequenceKernelChoice,
  SequenceOptimizerState,
  SequenceTrainConfig,
  SequenceTrainResult,
  SequenceTrainState,
} from './sequential.js';
export {
  sequenceTrainStateFromCheckpoint,
  sequenceTrainStateToCheckpoint,
} from './sequential-state.js';
