/**
 * `@advrec/trainer`.
 *
 * @packageDocumentation
 */
export { MfEngine } from './mf-engine.js';
export type { EpochStats, MfEngineOptions } from './mf-engine.js';
export {
  applySparseUpdate,
  createOptimizerState,
  optimizerTables,
  resolveOptimizerConfig,
} from './optimizer.js';
export type {
  OptimizerConfig,
  OptimizerName,
  OptimizerState,
  ResolvedOptimizerConfig,
} from './optimizer.js';
export { GenericEngine } from './generic-engine.js';
export type { GenericEngineOptions } from './generic-engine.js';
export { Trainer, resolveTrainConfig } from './trainer.js';
export type {
  AdversarialConfig,
  EpochEvent,
  PhaseOptions,
  PhaseResult,
  ResolvedTrainConfig,
  TrainCallbacks,
  TrainConfig,
  ValidationConfig,
  ValidationEvent,
} from './trainer.js';
export { loadTfjs } from './backend.js';
export type { TfjsRuntime } from './backend.js';
export { TfjsModel, registerTfjsModel } from './tfjs-model.js';
export type { TfjsModelDefinition, TfjsTableSpec } from './tfjs-model.js';
export { robustnessSweep } from './robustness.js';
export type {
  RankChangeSummary,
  RobustnessOptions,
  RobustnessPoint,
  RobustnessReport,
} from './robustness.js';
export { VisualEngine } from './visual-engine.js';
export type { VisualEngineOptions } from './visual-engine.js';
export { trainAmrChain } from './amr-chain.js';
export type { AmrChainOptions, AmrChainResult } from './amr-chain.js';
