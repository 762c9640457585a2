/**
 * Evaluation and attacks under a run's protocol (no training engine involved).
 */
import { generateSampledTestSet } from '@advrec/data';
import type { SampledTestSet } from '@advrec/data';
import { evaluateFullRanking, evaluateSampled, robustnessSweep } from '@advrec/metrics';
import type {
  ChangeInterval,
  EvaluationResult,
  MetricName,
  RobustnessReport,
} from '@advrec/metrics';
import { resolveAttackTarget } from '@advrec/models';
import type { Model } from '@advrec/models';
import type { ResolvedRunConfig } from './config.js';
import type { LoadedData } from './catalog/load.js';
import type { ReportSection } from './run-folder/report.js';
import { textTable } from './run-folder/context.js';

/** Evaluates a model on the test split under the run's protocol. */
export async function evaluateModel(
  model: Model,
  data: LoadedData,
  evaluation: ResolvedRunConfig['evaluation'],
  options: {
    split?: 'test' | 'validation';
    seed?: number;
    threads?: number;
    testSet?: SampledTestSet | null;
  } = {},
): Promise<EvaluationResult> {
  const metrics = evaluation.metrics as readonly MetricName[];
  if (evaluation.protocol === 'sampled') {
    const testSet =
      options.testSet ?? sampledTestSetFor(data, evaluation.negatives, options.seed ?? 0);
    return evaluateSampled(model, data.dataset, testSet, {
      cutoffs: evaluation.cutoffs,
      metrics,
      split: options.split ?? 'test',
    });
  }
  return evaluateFullRanking(model, data.dataset, {
    cutoffs: evaluation.cutoffs,
    metrics,
    split: options.split ?? 'test',
    ...(options.threads ? { threads: options.threads } : {}),
  });
}

/** The sampled test set: the files' own negatives when they carry them, else generated (seeded). */
export function sampledTestSetFor(
  data: LoadedData,
  negatives: number,
  seed: number,
): SampledTestSet {
  if (data.sampledTestSet && data.sampledTestSet.negativesPerCase === negatives)
    return data.sampledTestSet;
  return generateSampledTestSet(data.dataset, { negatives, seed });
}

/** The metric robustness tables and warnings speak of: NDCG at the second cutoff (or the only one). */
export function robustnessMetricKey(cutoffs: readonly number[]): string {
  return `ndcg@${cutoffs[Math.min(1, cutoffs.length - 1)]}`;
}

/** Runs a robustness sweep (APR Table 2 / AMR Table 3) under the run's protocol. */
export async function attackModel(
  model: Model,
  data: LoadedData,
  evaluation: ResolvedRunConfig['evaluation'],
  attack: NonNullable<ResolvedRunConfig['attack']>,
  seed: number,
  threads?: number,
  signal?: AbortSignal,
): Promise<RobustnessReport> {
  // A visual model with no surfaces named: AMR's attack, on the item features, with
  // epsilons relative to the prepared rows' mean norm (reported in those units).
  const target = resolveAttackTarget(model, attack.surfaces);
  return robustnessSweep(model, data.dataset, {
    ...(signal ? { signal } : {}),
    epsilons: attack.epsilons,
    epsilonUnit: target.unit,
    headlineMetric: robustnessMetricKey(evaluation.cutoffs),
    adversaries: attack.adversaries,
    ...(target.surfaces ? { surfaces: target.surfaces } : {}),
    cutoffs: evaluation.cutoffs,
    metrics: evaluation.metrics.filter((m) => m !== 'auc') as MetricName[],
    seed,
    ...(threads ? { threads } : {}),
    ...(evaluation.protocol === 'sampled'
      ? { testSet: sampledTestSetFor(data, evaluation.negatives, seed) }
      : {}),
  });
}

/** Prints a sweep's warnings on the progress output (stderr), one line each. */
export function logWarnings(
  context: { readonly progress: { log(message: string): void } },
  warnings: readonly { readonly message: string }[],
): void {
  for (const w of warnings) context.progress.log(`warning: ${w.message}`);
}

/** The protocol line every table of results carries. */
export function protocolLine(result: EvaluationResult): string {
  const p = result.protocol;
  return `${p.kind === 'full' ? 'full ranking' : `sampled (${p.negativesPerCase} negatives, ${p.negativeSource ?? 'generated'})`} on ${p.split}; candidates: ${p.candidates}; excluded: ${p.excluded.join(', ') || 'none'}; ties: ${p.tieRule}; ${p.usersEvaluated} users`;
}

/**
 * What epsilon means for each adversary: FGM and random noise have L2 norm epsilon per row;
 * FGSM moves every coordinate by epsilon, so its L2 norm per row is sqrt(K) epsilon (8x at
 * K = 64): columns at equal epsilon are not equal budgets across those adversaries.
 */
function normNote(adversaries: readonly string[]): string {
  const parts = [
    'FGM and random noise: L2 norm epsilon per row (FGM along the direction that most increases the BPR loss, random along a random one)',
  ];
  if (adversaries.includes('fgsm'))
    parts.push(
      'FGSM: every coordinate moves by epsilon, so its L2 norm per row is sqrt(K) x epsilon (8 x epsilon at K = 64); compare FGSM at epsilon / sqrt(K) with FGM at epsilon for an equal budget',
    );
  return `${parts.join('. ')}.`;
}

/** A relative change as the tables print it: `-12.3%`, with `(n.s.)` when its interval covers zero. */
/** A relative change as a table cell: `-12.3%`, `(n.s.)` when its interval covers zero. */
export function changeCell(change: number | undefined, interval?: ChangeInterval): string {
  if (change === undefined || !Number.isFinite(change)) return 'n/a';
  const text = `${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)}%`;
  return interval?.coversZero ? `${text} (n.s.)` : text;
}

/**
 * The lines of a robustness table, one per adversary and attack, then one per bound: a label
 * and a cell per epsilon (the change, `(n.s.)` when its interval covers zero, and with
 * `intervals` the interval itself).
 */
export function robustnessLines(
  report: RobustnessReport,
  metricKey: string,
  epsilons: readonly number[],
  intervals: boolean,
): { label: string; cells: string[] }[] {
  const lines: { label: string; cells: string[] }[] = [];
  for (const key of [...new Set(report.points.map((p) => `${p.adversary}\u0000${p.attack}`))]) {
    const [adversary, attack] = key.split('\u0000') as [string, string];
    const points = report.points.filter((p) => p.adversary === adversary && p.attack === attack);
    const draws = points[0]?.draws;
    lines.push({
      label: `${adversary}${attack === 'evaluation' ? ', evaluation-side' : draws ? `, mean of ${draws} draws` : ''}`,
      cells: epsilons.map((e) => {
        const point = points.find((p) => p.epsilon === e);
        if (!point) return 'n/a';
        const interval = point.intervals[metricKey];
        const cell = changeCell(point.relativeChange[metricKey], interval);
        return intervals && interval
          ? `${cell} [${changeCell(interval.low)}, ${changeCell(interval.high)}]`
          : cell;
      }),
    });
  }
  for (const key of [...new Set(report.bounds.map((b) => `${b.surface}\u0000${b.norm}`))]) {
    const [surface, norm] = key.split('\u0000') as [string, string];
    const bounds = report.bounds.filter((b) => b.surface === surface && b.norm === norm);
    lines.push({
      label: `${bounds[0]!.kind === 'exact' ? 'exact worst case' : 'certified bound'} (${surface} alone${norm === 'linf' ? ', L-infinity' : ''})`,
      cells: epsilons.map((e) =>
        changeCell(bounds.find((b) => b.epsilon === e)?.relativeChange[metricKey]),
      ),
    });
  }
  return lines;
}

/** Rows of the robustness table: one per model, adversary and attack, then the bounds. */
function robustnessRows(
  reports: readonly { readonly name: string; readonly report: RobustnessReport }[],
  metricKey: string,
  epsilons: readonly number[],
): (string | number)[][] {
  return reports.flatMap(({ name, report }) =>
    robustnessLines(report, metricKey, epsilons, true).map((line) => [
      name,
      line.label,
      report.clean[metricKey] ?? Number.NaN,
      ...line.cells,
    ]),
  );
}

/**
 * Report sections for a robustness sweep: the warnings, the drop table (Tables 2/3, with
 * the evaluation-side attack and the exact bounds beside the papers' attack) and the curve
 * (Figures 1/4).
 */
export function robustnessSections(
  reports: readonly { readonly name: string; readonly report: RobustnessReport }[],
  metricKey: string,
  idPrefix = 'robustness',
): ReportSection[] {
  const epsilons = [...new Set(reports.flatMap((r) => r.report.points.map((p) => p.epsilon)))].sort(
    (a, b) => a - b,
  );
  const adversaries = [...new Set(reports.flatMap((r) => r.report.points.map((p) => p.adversary)))];
  const warnings = reports.flatMap(({ name, report }) =>
    (report.warnings ?? []).map((w) => `- ${reports.length > 1 ? `${name}: ` : ''}${w.message}`),
  );
  const first = reports[0]?.report;
  const boundsNotes = [...new Set(reports.map((r) => r.report.boundsNote).filter(Boolean))];
  const settings = [
    ...new Map(
      reports.flatMap((r) =>
        r.report.points
          .filter((p) => p.adversarySettings)
          .map(
            (p) => [p.adversary, `${p.adversary}: ${JSON.stringify(p.adversarySettings)}`] as const,
          ),
      ),
    ).values(),
  ];
  return [
    ...(warnings.length > 0
      ? [
          {
            kind: 'text' as const,
            title: 'Warnings: what these robustness figures may not mean',
            text: warnings.join('\n'),
          },
        ]
      : []),
    {
      kind: 'table',
      title: `Robustness: relative change of ${metricKey} under perturbation`,
      caption: `Surfaces perturbed: ${first?.surfaces.join(', ') ?? ''}; split ${first?.split ?? 'test'}${first && first.epsilonUnit !== 1 ? `; epsilons relative to the surface's mean row norm (${first.epsilonUnit.toPrecision(3)})` : ''}. Each cell: the change of the mean, and its ${Math.round(100 * (first?.confidence ?? 0.95))}% paired interval over users; (n.s.): the interval covers zero. The papers' attack crafts the perturbation from the BPR loss on training triples; the evaluation-side attack aims the same budget at each user's held-out items against their 20 strongest competitors, and a user keeps the worse of clean and attacked. Exact worst case (item side) and certified bound (user side): no perturbation of that size per row can go lower, one surface at a time${boundsNotes.length > 0 ? ` (${boundsNotes.join('; ')})` : ''}. ${normNote(adversaries)}${settings.length > 0 ? ` Settings: ${settings.join('; ')}.` : ''}`,
      columns: ['model', 'perturbation', `clean ${metricKey}`, ...epsilons.map((e) => `eps ${e}`)],
      rows: robustnessRows(reports, metricKey, epsilons),
    },
    {
      kind: 'plot',
      id: `${idPrefix}-curve`,
      title: `${metricKey} under perturbation`,
      caption:
        "Solid: the papers' gradient perturbation; dashed: random noise of the same size, the evaluation-side attack, and the exact worst case (L2, one surface), the lowest any perturbation of that size per row can go.",
      plot: {
        xLabel: 'epsilon',
        yLabel: metricKey,
        series: reports.flatMap(({ name, report }) => [
          ...[...new Set(report.points.map((p) => `${p.adversary}\u0000${p.attack}`))].map(
            (key) => {
              const [adversary, attack] = key.split('\u0000') as [string, string];
              return {
                name: `${name}, ${adversary}${attack === 'evaluation' ? ' (evaluation-side)' : ''}`,
                dashed: adversary === 'random' || attack === 'evaluation',
                points: [
                  [0, report.clean[metricKey] ?? Number.NaN] as const,
                  ...report.points
                    .filter((p) => p.adversary === adversary && p.attack === attack)
                    .sort((a, b) => a.epsilon - b.epsilon)
                    .map((p) => [p.epsilon, p.metrics[metricKey] ?? Number.NaN] as const),
                ],
              };
            },
          ),
          ...[...new Set(report.bounds.filter((b) => b.norm === 'l2').map((b) => b.surface))].map(
            (surface) => ({
              name: `${name}, worst case (${surface})`,
              dashed: true,
              points: [
                [0, report.clean[metricKey] ?? Number.NaN] as const,
                ...report.bounds
                  .filter((b) => b.surface === surface && b.norm === 'l2')
                  .sort((a, b) => a.epsilon - b.epsilon)
                  .map((b) => [b.epsilon, b.metrics[metricKey] ?? Number.NaN] as const),
              ],
            }),
          ),
        ]),
      },
    },
  ];
}

/**
 * Mean metrics over warm and over cold-start test cases separately (AMR's cold-start
 * report), for the sampled protocol, where `perUser` holds one value per test case in the
 * order of `positives`. Null when no test item is cold.
 */
export function coldStartSection(
  test: readonly (readonly [string, EvaluationResult])[],
  positives: Int32Array,
  coldStartItems: Int32Array,
): { section: ReportSection; metrics: Record<string, Record<string, number>> } | null {
  const cold = new Set(coldStartItems);
  const isCold = Array.from(positives, (i) => cold.has(i));
  const coldCount = isCold.filter(Boolean).length;
  if (coldCount === 0) return null;
  const keys = Object.keys(test[0]![1].metrics);
  const mean = (r: EvaluationResult, key: string, want: boolean): number => {
    let s = 0;
    let n = 0;
    r.perUser[key]!.forEach((v, c) => {
      if (isCold[c] === want) {
        s += v;
        n++;
      }
    });
    return n > 0 ? s / n : Number.NaN;
  };
  const metrics: Record<string, Record<string, number>> = {};
  const rows: (string | number)[][] = [];
  for (const want of [false, true])
    for (const [name, r] of test) {
      const label = `${name} (${want ? 'cold' : 'warm'})`;
      metrics[label] = Object.fromEntries(keys.map((k) => [k, mean(r, k, want)]));
      rows.push([label, ...keys.map((k) => metrics[label]![k]!)]);
    }
  return {
    metrics,
    section: {
      kind: 'table',
      title: 'Warm and cold-start test cases',
      caption: `${positives.length - coldCount} warm and ${coldCount} cold-start test cases (test items without a training interaction, scored by their features alone: zero ID embedding, as in the AMR paper). Cold items compete with warm negatives here; a features-only score ranks an item near the middle of them unless the features predict preference strongly.`,
      columns: ['cases', ...keys],
      rows,
    },
  };
}

/** A text table of evaluation results, one row per model. */
export function metricsTable(rows: readonly (readonly [string, EvaluationResult])[]): string {
  const keys = Object.keys(rows[0]![1].metrics);
  return textTable(
    ['model', ...keys],
    rows.map(([name, r]) => [name, ...keys.map((k) => r.metrics[k]!)]),
  );
}
