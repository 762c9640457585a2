/**
 * `@advrec/sweep`: grids of runs. Sweep files and their expansion ({@link readSweepFile},
 * {@link expandSweep}) under an application's config rules ({@link SweepConfigHooks}); the
 * results read back from run folders and aggregated over seeds, the best configuration chosen
 * on validation ({@link aggregateSweep}); jobs run by an in-process pool ({@link runLocalPool})
 * or on a Redis queue with workers on any number of machines ({@link runOnQueue},
 * {@link runQueueWorker}; `bullmq` and `ioredis` are optional, loaded on demand). What a job
 * does is the application's {@link JobRunner}.
 *
 * @packageDocumentation
 */
export { JobFailedError, asJobFailure, importJobRunner } from './jobs.js';
export type { JobRunner, SweepJob, SweepJobResult } from './jobs.js';
export { JobThread, runLocalPool } from './pool.js';
export type { JobEvents, PoolOptions } from './pool.js';
export {
  DEFAULT_QUEUE_LOST_AFTER_MS,
  DEFAULT_QUEUE_NAME,
  QueueLostError,
  QueuePackageMissingError,
  checkQueue,
  redactUrl,
  runOnQueue,
  runQueueWorker,
} from './queue.js';
export type { QueueRunOptions, QueueWorkerOptions } from './queue.js';
export { MAX_RUN_NAME_BYTES, MAX_SWEEP_RUNS, expandSweep, readSweepFile } from './spec.js';
export type {
  AxisScalar,
  AxisValue,
  SweepAxis,
  SweepConfigHooks,
  SweepPlan,
  SweepRun,
  SweepSpec,
} from './spec.js';
export { aggregateSweep, headlineTestMetric, readRunResult } from './aggregate.js';
export type { ConfigurationSummary, Spread, SweepAggregate, SweepRunResult } from './aggregate.js';
