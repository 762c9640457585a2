/**
 * `advrec`: the command line of the advrec project, and the pieces it is built from for
 * programs that want them (config validation, data set registry and downloads, reports).
 *
 * @packageDocumentation
 */
export { createProgram, describeCli, runCli, EXIT_CODE_HELP } from './cli.js';
export type { CliCommandReference, CliIo } from './cli.js';
export { EXIT_CODES, DownloadError, exitCodeOf } from './errors.js';
export type { ExitCode } from './errors.js';
export {
  applyOverrides,
  readConfigFile,
  resolveRunConfig,
  runConfigSchema,
  schemaIssues,
} from './config.js';
export type { ResolvedRunConfig } from './config.js';
export type {
  AttackSection,
  DataConfig,
  EvaluationSection,
  ModelConfig,
  PairwiseRunConfig,
  RunConfig,
  SequentialEvaluationSection,
  SequentialModelSection,
  SequentialRunConfigFile,
  SequentialTrainingSection,
  SplitConfig,
  SyntheticConfig,
  TrainingSection,
} from './config-types.js';
export {
  DATASETS,
  dataDirectory,
  datasetEntry,
  datasetFingerprint,
  loadData,
  locateDataset,
} from './catalog/load.js';
export type { LoadDataOptions } from './catalog/load.js';
export type { DatasetEntry, DatasetFile, LoadedData } from './catalog/load.js';
export { downloadDataset, safeMemberPath } from './catalog/fetch.js';
export type { DownloadOptions, DownloadResult } from './catalog/fetch.js';
export { pValue } from './run-folder/context.js';
export { renderHtml, renderMarkdown, renderSvg, writeReport } from './run-folder/report.js';
export type { LinePlot, PlotSeries, Report, ReportSection } from './run-folder/report.js';
export { Progress } from './progress.js';
export type { ProgressBar, ProgressOptions } from './progress.js';
export { sweepConfigHooks } from './sweep/config-hooks.js';
export { jobRunner, sweepJobRunnerModule } from './sweep/jobs.js';
export type { FeatureShardJob, JobResult, TrainJob, WorkerJob } from './sweep/jobs.js';
