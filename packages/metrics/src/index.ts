/**
 * `@advrec/metrics`: ranking evaluation under the full-ranking (APR) and sampled-negative
 * (AMR, NCF) protocols, with per-user values, catalogue coverage, robustness-ready results
 * and paired significance tests. Depends on `@advrec/data` and on the scoring part of the
 * Model contract only ({@link Scorer}).
 *
 * @packageDocumentation
 */
export { EvaluationError } from './errors.js';
export { dotScore, factorizedScorer, isFactorized } from './scorer.js';
export type { FactorizedScorer, Scorer, ScoringFactors } from './scorer.js';
export {
  CUTOFF_METRICS,
  DEFAULT_METRICS,
  METRIC_KEY_FORMAT,
  METRIC_NAMES,
  metricKey,
  parseMetricKey,
} from './metrics.js';
export type { MetricName } from './metrics.js';
export { evaluateFullRanking, evaluateSampled, ONNX_BLOCK_USERS, TIE_RULE } from './evaluate.js';
export type {
  EvaluationEngine,
  EvaluationProtocol,
  EvaluationResult,
  FullRankingOptions,
  SampledOptions,
} from './evaluate.js';
export { evaluateBruteForce } from './reference.js';
export type { BruteForceResult } from './reference.js';
export { compareEvaluations, pairedTTest, tQuantile, wilcoxonSignedRank } from './significance.js';
export type { MetricComparison, PairedTTestResult, WilcoxonResult } from './significance.js';
export { relativeChanges, robustnessSweep } from './robustness.js';
export type {
  AttackKind,
  ChangeInterval,
  RobustnessBound,
  RankChangeSummary,
  RobustnessOptions,
  RobustnessPoint,
  RobustnessReport,
} from './robustness.js';
export {
  RAISE_WARNING_MINIMUM,
  VISUAL_COLLAPSE_THRESHOLD,
  headlineMetric,
  robustnessWarnings,
} from './robustness-warnings.js';
export type { RobustnessWarning, RobustnessWarningCode } from './robustness-warnings.js';
export { worstCaseBounds } from './worst-case.js';
export type { WorstCaseOptions, WorstCasePoint, WorstCaseReport } from './worst-case.js';
export { meanPairwiseCosine, meanRowNorm } from './diversity.js';
