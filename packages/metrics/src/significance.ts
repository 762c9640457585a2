import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import signrankCdf from '@stdlib/stats-base-dists-signrank-cdf';
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import { EvaluationError } from './errors.js';

/** Result of {@link pairedTTest}. */
export interface PairedTTestResult {
  /** Pairs used. */
  readonly n: number;
  /** Mean of `a - b`. */
  readonly meanDifference: number;
  /** Sample standard deviation of `a - b`. */
  readonly standardDeviation: number;
  /** t statistic, `mean / (sd / sqrt(n))`. */
  readonly t: number;
  readonly degreesOfFreedom: number;
  /** Two-sided p-value (Student's t distribution, from @stdlib). */
  readonly pValue: number;
}

/**
 * Paired t-test over per-user metric values (the papers' "one-sample paired t-test": a
 * one-sample t-test on the per-user differences). Two-sided.
 *
 * Degenerate cases, documented rather than NaN: all differences zero gives t = 0, p = 1;
 * identical non-zero differences give t = +-Infinity, p = 0.
 * @throws {@link EvaluationError} when the arrays differ in length, have fewer than 2
 * pairs, or hold a non-finite value.
 */
export function pairedTTest(a: ArrayLike<number>, b: ArrayLike<number>): PairedTTestResult {
  const differences = pairDifferences(a, b, 2);
  const n = differences.length;
  let mean = 0;
  for (const d of differences) mean += d;
  mean /= n;
  let ss = 0;
  for (const d of differences) ss += (d - mean) ** 2;
  const sd = Math.sqrt(ss / (n - 1));
  const df = n - 1;
  if (sd === 0) {
    return {
      n,
      meanDifference: mean,
      standardDeviation: 0,
      t: mean === 0 ? 0 : Math.sign(mean) * Infinity,
      degreesOfFreedom: df,
      pValue: mean === 0 ? 1 : 0,
    };
  }
  const t = mean / (sd / Math.sqrt(n));
  const pValue = Math.min(1, 2 * tCdf(-Math.abs(t), df));
  return { n, meanDifference: mean, standardDeviation: sd, t, degreesOfFreedom: df, pValue };
}

/**
 * The `p`-quantile of Student's t distribution with `degreesOfFreedom` (bisection on the
 * @stdlib CDF, to 1e-12): what a paired confidence interval multiplies the standard error by.
 */
export function tQuantile(p: number, degreesOfFreedom: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`p must be in (0, 1), got ${p}`);
  if (!(degreesOfFreedom > 0))
    throw new RangeError(`degrees of freedom must be > 0, got ${degreesOfFreedom}`);
  let lo = -1e3;
  let hi = 1e3;
  for (let k = 0; k < 200 && hi - lo > 1e-12; k++) {
    const mid = (lo + hi) / 2;
    if (tCdf(mid, degreesOfFreedom) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Result of {@link wilcoxonSignedRank}. */
export interface WilcoxonResult {
  /** Pairs with a non-zero difference (zero differences are dropped, Wilcoxon's method). */
  readonly n: number;
  /** Sum of the ranks of the positive differences. */
  readonly statistic: number;
  /** Normal approximation z (continuity- and tie-corrected), also given with the exact method. */
  readonly z: number;
  /** Two-sided p-value. */
  readonly pValue: number;
  /** `exact` (n <= 50 without ties in |d|: the signed-rank distribution) or `normal`. */
  readonly method: 'exact' | 'normal';
}

/**
 * Wilcoxon signed-rank test over per-user metric values, two-sided. Zero differences are
 * dropped; tied |differences| get average ranks. Exact distribution (@stdlib signrank)
 * for n <= 50 without ties, else the normal approximation with tie and continuity
 * corrections. All differences zero gives p = 1.
 */
export function wilcoxonSignedRank(a: ArrayLike<number>, b: ArrayLike<number>): WilcoxonResult {
  const differences = pairDifferences(a, b, 1).filter((d) => d !== 0);
  const n = differences.length;
  if (n === 0) return { n: 0, statistic: 0, z: 0, pValue: 1, method: 'exact' };
  const order = differences.map((d, k) => [Math.abs(d), k] as const).sort((x, y) => x[0] - y[0]);
  const ranks = new Float64Array(n);
  let tieCorrection = 0;
  let hasTies = false;
  for (let start = 0; start < n;) {
    let end = start;
    while (end + 1 < n && order[end + 1]![0] === order[start]![0]) end++;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) ranks[order[k]![1]] = rank;
    const t = end - start + 1;
    if (t > 1) {
      hasTies = true;
      tieCorrection += t ** 3 - t;
    }
    start = end + 1;
  }
  let statistic = 0;
  for (let k = 0; k < n; k++) if (differences[k]! > 0) statistic += ranks[k]!;
  const mean = (n * (n + 1)) / 4;
  const variance = (n * (n + 1) * (2 * n + 1)) / 24 - tieCorrection / 48;
  const deviation = statistic - mean;
  const z = variance === 0 ? 0 : (deviation - Math.sign(deviation) * 0.5) / Math.sqrt(variance);
  if (n <= 50 && !hasTies) {
    const low = Math.min(statistic, (n * (n + 1)) / 2 - statistic);
    return { n, statistic, z, pValue: Math.min(1, 2 * signrankCdf(low, n)), method: 'exact' };
  }
  return {
    n,
    statistic,
    z,
    pValue: Math.min(1, 2 * normalCdf(-Math.abs(z), 0, 1)),
    method: 'normal',
  };
}

function pairDifferences(a: ArrayLike<number>, b: ArrayLike<number>, minimum: number): number[] {
  if (a.length !== b.length)
    throw new EvaluationError(`paired tests need equal lengths, got ${a.length} and ${b.length}`);
  if (a.length < minimum)
    throw new EvaluationError(`paired tests need at least ${minimum} pairs, got ${a.length}`);
  const out: number[] = [];
  for (let k = 0; k < a.length; k++) {
    const d = a[k]! - b[k]!;
    if (!Number.isFinite(d))
      throw new EvaluationError(`pair ${k} is not finite (${a[k]}, ${b[k]})`);
    out.push(d);
  }
  return out;
}

/** One metric of two evaluations compared: values, relative change and both tests' p-values. */
export interface MetricComparison {
  /** The candidate's value. */
  readonly a: number;
  /** The baseline's value. */
  readonly b: number;
  /** `(a - b) / b`. */
  readonly relative: number;
  /** Two-sided paired t-test over the per-user values. */
  readonly tTestP: number;
  /** Two-sided Wilcoxon signed-rank test over the per-user values. */
  readonly wilcoxonP: number;
}

/**
 * Compares metric `key` of a candidate and a baseline evaluated on the same users (per-user
 * values paired). Throws a RangeError when either lacks per-user values for `key`.
 */
export function compareEvaluations(
  candidate: {
    readonly metrics: Readonly<Record<string, number>>;
    readonly perUser: Readonly<Record<string, Float64Array>>;
  },
  baseline: {
    readonly metrics: Readonly<Record<string, number>>;
    readonly perUser: Readonly<Record<string, Float64Array>>;
  },
  key: string,
): MetricComparison {
  const x = candidate.perUser[key];
  const y = baseline.perUser[key];
  if (!x || !y) throw new RangeError(`no per-user values for ${key}`);
  const a = candidate.metrics[key]!;
  const b = baseline.metrics[key]!;
  return {
    a,
    b,
    relative: (a - b) / b,
    tTestP: pairedTTest(x, y).pValue,
    wilcoxonP: wilcoxonSignedRank(x, y).pValue,
  };
}
