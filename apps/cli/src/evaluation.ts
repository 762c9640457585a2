/**
 * Evaluation and attacks under a run's protocol (no training engine involved).
 */
import { generateSampledTestSet } from '@advrec/data';
import type { SampledTestSet } from '@advrec/data';
import { evaluateFullRanking, evaluateSampled, robustnessSweep } from '@advrec/metrics';
import type { EvaluationResult, MetricName, RobustnessReport } from '@advrec/metrics';
import { absoluteEpsilon, resolveAttackTarget } from '@advrec/models';
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
  const report = await robustnessSweep(model, data.dataset, {
    ...(signal ? { signal } : {}),
    epsilons: attack.epsilons.map((e) => absoluteEpsilon(target, e)),
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
  if (!target.relative) return report;
  return {
    ...report,
    // Points run adversary by adversary over the epsilons in order: the k-th is epsilon k mod n.
    points: report.points.map((p, k) => ({
      ...p,
      epsilon: attack.epsilons[k % attack.epsilons.length]!,
    })),
  };
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

/** Report sections for a robustness sweep: the drop table (Tables 2/3) and the curve (Figures 1/4). */
export function robustnessSections(
  reports: readonly { readonly name: string; readonly report: RobustnessReport }[],
  metricKey: string,
  idPrefix = 'robustness',
): ReportSection[] {
  const epsilons = [...new Set(reports.flatMap((r) => r.report.points.map((p) => p.epsilon)))].sort(
    (a, b) => a - b,
  );
  const adversaries = [...new Set(reports.flatMap((r) => r.report.points.map((p) => p.adversary)))];
  const rows: (string | number)[][] = [];
  for (const { name, report } of reports)
    for (const adversary of adversaries)
      rows.push([
        name,
        adversary,
        report.clean[metricKey] ?? Number.NaN,
        ...epsilons.map((e) => {
          const point = report.points.find((p) => p.adversary === adversary && p.epsilon === e);
          const change = point?.relativeChange[metricKey];
          return change === undefined
            ? 'n/a'
            : `${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)}%`;
        }),
      ]);
  return [
    {
      kind: 'table',
      title: `Robustness: relative change of ${metricKey} under perturbation`,
      caption: `Surfaces perturbed: ${reports[0]?.report.surfaces.join(', ') ?? ''}; split ${reports[0]?.report.split ?? 'test'}. ${normNote(adversaries)}`,
      columns: ['model', 'adversary', `clean ${metricKey}`, ...epsilons.map((e) => `eps ${e}`)],
      rows,
    },
    {
      kind: 'plot',
      id: `${idPrefix}-curve`,
      title: `${metricKey} under perturbation`,
      caption:
        'Solid lines: adversarial (gradient) perturbation; dashed: random noise of the same size.',
      plot: {
        xLabel: 'epsilon',
        yLabel: metricKey,
        series: reports.flatMap(({ name, report }) =>
          adversaries.map((adversary) => ({
            name: `${name}, ${adversary}`,
            dashed: adversary === 'random',
            points: [
              [0, report.clean[metricKey] ?? Number.NaN] as const,
              ...report.points
                .filter((p) => p.adversary === adversary)
                .sort((a, b) => a.epsilon - b.epsilon)
                .map((p) => [p.epsilon, p.metrics[metricKey] ?? Number.NaN] as const),
            ],
          })),
        ),
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
