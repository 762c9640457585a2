import type { Dataset } from '@advrec/data';
import { EvaluationError } from './errors.js';
import { metricKey, planMetrics, throwIssues, type MetricName } from './metrics.js';
import type { Scorer } from './scorer.js';

/** Per-user values from {@link evaluateBruteForce}. */
export interface BruteForceResult {
  readonly users: Int32Array;
  readonly perUser: Readonly<Record<string, Float64Array>>;
  /** Top lists, `users.length x maxCutoff`, -1 padded. */
  readonly topLists: Int32Array;
}

/**
 * The reference evaluator: scores every item for every user, sorts every candidate, and
 * computes each metric straight from its definition on the sorted list. Slow and simple
 * on purpose: the fast evaluator is tested against it (same per-user values, same top
 * lists). Same protocol as `evaluateFullRanking` with its defaults.
 */
export async function evaluateBruteForce(
  scorer: Scorer,
  dataset: Dataset,
  options: {
    split?: 'test' | 'validation';
    cutoffs?: readonly number[];
    metrics?: readonly MetricName[];
  } = {},
): Promise<BruteForceResult> {
  const issues: { path: string; message: string }[] = [];
  const plan = planMetrics(options.metrics, options.cutoffs, issues);
  throwIssues(issues);
  const split = options.split ?? 'test';
  const relevantSplit = split === 'test' ? dataset.test : dataset.validation;
  if (relevantSplit === null) throw new EvaluationError(`no ${split} split`);
  const excludedSplits = split === 'test' ? [dataset.train, dataset.validation] : [dataset.train];
  const users: number[] = [];
  const perUserLists: Record<string, number[]> = {};
  for (const key of plan.keys) perUserLists[key] = [];
  const topLists: number[] = [];
  for (let u = 0; u < dataset.numUsers; u++) {
    const excluded = new Set<number>();
    for (const m of excludedSplits) if (m) for (const i of m.row(u)) excluded.add(i);
    const relevant = new Set([...relevantSplit.row(u)].filter((i) => !excluded.has(i)));
    if (relevant.size === 0) continue;
    users.push(u);
    const scores = await scorer.scoreAll(Int32Array.of(u));
    const ranked: number[] = [];
    for (let i = 0; i < dataset.numItems; i++) if (!excluded.has(i)) ranked.push(i);
    ranked.sort((a, b) => {
      if (scores[a] !== scores[b]) return scores[b]! - scores[a]!;
      const ra = relevant.has(a) ? 1 : 0;
      const rb = relevant.has(b) ? 1 : 0;
      return ra !== rb ? ra - rb : a - b;
    });
    for (let p = 0; p < plan.maxCutoff; p++) topLists.push(ranked[p] ?? -1);
    for (const name of plan.metrics) {
      if (name === 'auc') {
        // For each relevant item: fraction of non-relevant candidates strictly below it in the list.
        let sum = 0;
        const negatives = ranked.length - relevant.size;
        let negativesSeen = 0;
        for (const item of ranked) {
          if (relevant.has(item))
            sum += negatives === 0 ? 1 : (negatives - negativesSeen) / negatives;
          else negativesSeen++;
        }
        perUserLists['auc']!.push(sum / relevant.size);
        continue;
      }
      for (const k of plan.cutoffs) {
        const list = ranked.slice(0, k);
        const hits = list.filter((i) => relevant.has(i)).length;
        let dcg = 0;
        let idcg = 0;
        let firstHit = 0;
        let precisionSum = 0;
        let hitsSoFar = 0;
        list.forEach((item, p) => {
          if (relevant.has(item)) {
            dcg += 1 / Math.log2(p + 2);
            hitsSoFar++;
            precisionSum += hitsSoFar / (p + 1);
            if (firstHit === 0) firstHit = p + 1;
          }
        });
        for (let j = 0; j < Math.min(relevant.size, k); j++) idcg += 1 / Math.log2(j + 2);
        const value = {
          hr: hits > 0 ? 1 : 0,
          recall: hits / relevant.size,
          precision: hits / k,
          ndcg: dcg / idcg,
          mrr: firstHit > 0 ? 1 / firstHit : 0,
          map: precisionSum / Math.min(relevant.size, k),
        }[name];
        perUserLists[metricKey(name, k)]!.push(value);
      }
    }
  }
  const perUser: Record<string, Float64Array> = {};
  for (const [key, values] of Object.entries(perUserLists))
    perUser[key] = Float64Array.from(values);
  return { users: Int32Array.from(users), perUser, topLists: Int32Array.from(topLists) };
}
