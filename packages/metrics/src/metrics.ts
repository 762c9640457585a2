import { ConfigError, type ConfigIssue } from '@advrec/data';

/**
 * Ranking metrics, binary relevance. For a user with relevant set R and pessimistic
 * 1-based positions p_r of its relevant items among the candidates:
 *
 * - `hr` (hit ratio): 1 if some p_r <= K, else 0.
 * - `recall`: #{p_r <= K} / |R|.
 * - `precision`: #{p_r <= K} / K.
 * - `ndcg`: sum_{p_r <= K} 1 / log2(p_r + 1), divided by the ideal DCG
 *   sum_{j=1..min(|R|, K)} 1 / log2(j + 1).
 * - `mrr`: 1 / min_r p_r if that is <= K, else 0 (MRR@K).
 * - `map`: (1 / min(|R|, K)) sum over the hits in the top K of precision at their position.
 * - `auc`: mean over r of the fraction of non-relevant candidates ranked below r (ties count
 *   against r); it has no cutoff, and is 1 for a user with no non-relevant candidate.
 *
 * With one relevant item (leave-one-out) `hr` and `recall` coincide and `ndcg` is
 * `1 / log2(p + 1)`, the papers' definitions.
 */
export type MetricName = 'hr' | 'recall' | 'precision' | 'ndcg' | 'mrr' | 'map' | 'auc';

/** Every metric name, in report order. */
export const METRIC_NAMES: readonly MetricName[] = [
  'hr',
  'recall',
  'precision',
  'ndcg',
  'mrr',
  'map',
  'auc',
];

/** Metrics that depend on a cutoff K. */
export const CUTOFF_METRICS: readonly MetricName[] = METRIC_NAMES.filter((m) => m !== 'auc');

/** Default metrics: every cutoff metric (AUC needs full ranks and costs a full pass per user). */
export const DEFAULT_METRICS: readonly MetricName[] = CUTOFF_METRICS;

/** The key of a metric in results: `ndcg@20`, or `auc`. */
export function metricKey(metric: MetricName, cutoff?: number): string {
  return metric === 'auc' ? 'auc' : `${metric}@${cutoff}`;
}

/**
 * Parses a cutoff metric key such as `ndcg@100` (the early-stopping metric of a training
 * config); `null` when it is not `<cutoff metric>@<positive integer>`.
 */
export function parseMetricKey(key: string): { metric: MetricName; cutoff: number } | null {
  const match = /^([a-z]+)@([1-9]\d*)$/.exec(key);
  if (!match || !CUTOFF_METRICS.includes(match[1] as MetricName)) return null;
  return { metric: match[1] as MetricName, cutoff: Number(match[2]) };
}

/** What {@link parseMetricKey} accepts, for error messages. */
export const METRIC_KEY_FORMAT = `<metric>@<K> with metric one of ${CUTOFF_METRICS.join(', ')} (e.g. ndcg@100)`;

/** Validated metric options. @internal */
export interface MetricPlan {
  readonly metrics: readonly MetricName[];
  readonly cutoffs: readonly number[];
  readonly maxCutoff: number;
  readonly keys: readonly string[];
  readonly fullRanks: boolean;
}

/** Checks cutoffs and metric names, reporting every problem. @internal */
export function planMetrics(
  metrics: readonly MetricName[] | undefined,
  cutoffs: readonly number[] | undefined,
  issues: ConfigIssue[],
): MetricPlan {
  const m = metrics ?? DEFAULT_METRICS;
  const k = cutoffs ?? [10, 20];
  if (!Array.isArray(m) || m.length === 0)
    issues.push({ path: 'metrics', message: 'must be a non-empty list' });
  else {
    m.forEach((name, index) => {
      if (!METRIC_NAMES.includes(name)) {
        issues.push({
          path: `metrics[${index}]`,
          message: `unknown metric ${JSON.stringify(name)}; known: ${METRIC_NAMES.join(', ')}`,
        });
      }
    });
  }
  if (!Array.isArray(k) || k.length === 0)
    issues.push({ path: 'cutoffs', message: 'must be a non-empty list of positive integers' });
  else {
    k.forEach((cutoff, index) => {
      if (!Number.isInteger(cutoff) || cutoff <= 0) {
        issues.push({
          path: `cutoffs[${index}]`,
          message: `must be a positive integer, got ${JSON.stringify(cutoff)}`,
        });
      }
    });
  }
  const unique = [...new Set(Array.isArray(k) ? k : [])].sort((a, b) => a - b);
  const names = Array.isArray(m) ? [...new Set(m)] : [];
  const keys: string[] = [];
  for (const name of METRIC_NAMES) {
    if (!names.includes(name)) continue;
    if (name === 'auc') keys.push('auc');
    else for (const cutoff of unique) keys.push(metricKey(name, cutoff));
  }
  return {
    metrics: names,
    cutoffs: unique,
    maxCutoff: unique[unique.length - 1] ?? 0,
    keys,
    fullRanks: names.includes('auc'),
  };
}

/** Throws the collected option problems. @internal */
export function throwIssues(issues: ConfigIssue[]): void {
  if (issues.length > 0) throw new ConfigError(issues);
}

const LOG2 = Math.log(2);
const idealCache: number[] = [0];

/** sum_{j=1..n} 1/log2(j+1). */
function idealDcg(n: number): number {
  while (idealCache.length <= n) {
    const j = idealCache.length;
    idealCache.push(idealCache[j - 1]! + LOG2 / Math.log(j + 1));
  }
  return idealCache[n]!;
}

/** Reused by {@link userMetrics}: one user's sorted positions (grows when needed). */
let sortScratch = new Float64Array(64);

/**
 * Computes every planned metric for one user from the pessimistic positions of its
 * relevant items (0 = below the largest cutoff, when full ranks were not computed) and
 * writes them into `out[key][index]`.
 * @internal
 */
export function userMetrics(
  plan: MetricPlan,
  positions: ArrayLike<number>,
  numNegatives: number,
  out: Record<string, Float64Array>,
  index: number,
): void {
  const count = positions.length;
  if (sortScratch.length < count) sortScratch = new Float64Array(2 * count);
  const sorted = sortScratch.subarray(0, count);
  for (let r = 0; r < count; r++) sorted[r] = positions[r] === 0 ? Infinity : positions[r]!;
  sorted.sort(); // numeric: a Float64Array's own order
  for (const name of plan.metrics) {
    if (name === 'auc') {
      let sum = 0;
      for (let r = 0; r < count; r++) {
        // Non-relevant candidates at or above r: its position minus the relevant ones before it, minus itself.
        const aboveOrTied = sorted[r]! - 1 - r;
        sum += numNegatives === 0 ? 1 : 1 - aboveOrTied / numNegatives;
      }
      out['auc']![index] = sum / count;
      continue;
    }
    for (const cutoff of plan.cutoffs) {
      let hits = 0;
      let dcg = 0;
      let ap = 0;
      for (let r = 0; r < count && sorted[r]! <= cutoff; r++) {
        hits++;
        dcg += LOG2 / Math.log(sorted[r]! + 1);
        ap += hits / sorted[r]!;
      }
      let value: number;
      switch (name) {
        case 'hr':
          value = hits > 0 ? 1 : 0;
          break;
        case 'recall':
          value = hits / count;
          break;
        case 'precision':
          value = hits / cutoff;
          break;
        case 'ndcg':
          value = dcg / idealDcg(Math.min(count, cutoff));
          break;
        case 'mrr':
          value = hits > 0 ? 1 / sorted[0]! : 0;
          break;
        case 'map':
          value = ap / Math.min(count, cutoff);
          break;
      }
      out[metricKey(name, cutoff)]![index] = value;
    }
  }
}
