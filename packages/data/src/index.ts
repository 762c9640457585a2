/**
 * `@advrec/data`: interaction logs and item features in, seeded splits and BPR triples out.
 *
 * Read a log ({@link readMovieLens100K}, {@link readDelimited}, {@link readUserItemLists}, ...),
 * clean it ({@link toImplicit}, {@link dedupe}, {@link kCore}), split it ({@link leaveOneOut},
 * {@link ratioSplit}, {@link givenSplit}, {@link holdOutValidation}) into a {@link Dataset},
 * then sample BPR triples ({@link TripleSampler}) or sampled-negative test sets
 * ({@link generateSampledTestSet}). Every random choice is seeded.
 *
 * @packageDocumentation
 */
export {
  AdvrecError,
  ConfigError,
  DataError,
  DataFormatError,
  WriteError,
  closestName,
  didYouMean,
} from './errors.js';
export type { ConfigIssue, DataLocation } from './errors.js';
export { Random, deriveSeed } from './random.js';
export { IdMap } from './id-map.js';
export type { InteractionLog } from './interaction-log.js';
export { readLines } from './lines.js';
export type { ReadLinesOptions, TextEncodingName } from './lines.js';
export {
  readAmrPositives,
  readDelimited,
  readMmrecInter,
  readMovieLens100K,
  readMovieLensRatingsDat,
  readNcfRatings,
  readSequenceLog,
  readUserItemLists,
} from './readers.js';
export type {
  ColumnMapping,
  ColumnRef,
  DelimitedOptions,
  IdFormat,
  MmrecSplit,
  SequenceLogOptions,
  UserItemListOptions,
} from './readers.js';
export { dedupe, filterByCount, kCore, selectInteractions, toImplicit } from './preprocess.js';
export type { CountFilterOptions } from './preprocess.js';
export { InteractionMatrix } from './interaction-matrix.js';
export {
  describe,
  formatDescription,
  givenSplit,
  holdOutValidation,
  leaveOneOut,
  ratioSplit,
} from './dataset.js';
export type {
  ColdStartPolicy,
  Dataset,
  DatasetDescription,
  GivenSplitOptions,
  LeaveOneOutOptions,
  RatioSplitOptions,
  SplitCounts,
  SplitOptions,
  SplitProtocol,
  ValidationOptions,
} from './dataset.js';
export { NegativeSampler, TripleSampler } from './sampler.js';
export {
  SequenceBatchSampler,
  generateCycleSequences,
  leaveLastOut,
  padHistory,
  sampleSequenceCandidates,
  sequencesFromLog,
} from './sequences.js';
export type {
  SequenceBatch,
  SequenceBatchSamplerOptions,
  SequenceSplit,
  UserSequences,
} from './sequences.js';
export type { TripleBatch, TripleSamplerOptions } from './sampler.js';
export {
  generateSampledTestSet,
  readSampledTestSet,
  writeSampledTestSet,
} from './sampled-test-set.js';
export type {
  NegativeFileFormat,
  ReadSampledTestSetOptions,
  SampledTestSet,
  SampledTestSetOptions,
} from './sampled-test-set.js';
export {
  alignItemFeatures,
  readFeatureMatrix,
  readNpy,
  readRawFeatures,
  toHalf,
  writeNpy,
  writeRawFeatures,
} from './features.js';
export type {
  AlignOptions,
  FeatureMatrix,
  ItemFeatures,
  RowAlignment,
  WriteNpyOptions,
} from './features.js';
export { principalComponents, projectRows } from './pca.js';
export type { PrincipalComponents, PrincipalComponentsOptions } from './pca.js';
export { generateSynthetic } from './synthetic.js';
export type { SyntheticData, SyntheticOptions } from './synthetic.js';
export { processIsAlive, removeStaleTemporaries, writeFileAtomic } from './write.js';
export { checkAllocation, formatBytes } from './memory.js';
export { loadAmrDataset, loadNcfDataset, readAmrTestPositives } from './repositories.js';
export type { DatasetWithNegatives } from './repositories.js';
export { globalRegistry } from './registry.js';
export { firstNonFinite } from './finite.js';
