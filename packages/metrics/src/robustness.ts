/**
 * Robustness of a trained model (APR Table 2, AMR Table 3): craft a perturbation with an
 * adversary, apply it, evaluate, for several epsilons. Needs a model, an adversary and the
 * metrics, never a training engine.
 */
import { ConfigError } from '@advrec/data';
import type { Dataset, SampledTestSet } from '@advrec/data';
import {
  craftPerturbation,
  craftPerturbationOn,
  getAdversary,
  perturbedCopy,
} from '@advrec/adversary';
import type { PerturbationTriples } from '@advrec/adversary';
import type { Model } from '@advrec/models';
import { evaluateFullRanking, evaluateSampled } from './evaluate.js';
import type { EvaluationResult } from './evaluate.js';
import type { MetricName } from './metrics.js';
import { dotScore } from './scorer.js';
import { pairedTTest, tQuantile } from './significance.js';
import { worstCaseBounds } from './worst-case.js';
import { headlineMetric, robustnessWarnings } from './robustness-warnings.js';
import type { RobustnessWarning } from './robustness-warnings.js';

/** Where a perturbation is aimed. */
export type AttackKind = 'training-loss' | 'evaluation';

/** Options of {@link robustnessSweep}. */
export interface RobustnessOptions {
  /** Perturbation sizes, in units of `epsilonUnit` (default 0.25, 0.5, 1, 2). */
  readonly epsilons?: readonly number[];
  /**
   * What one unit of `epsilons` is in absolute terms (default 1): a surface's row scale when
   * epsilons are relative to it (`resolveAttackTarget` in `@advrec/models`). Points report
   * both the epsilon as given and the absolute one.
   */
  readonly epsilonUnit?: number;
  /** Registered adversaries to compare (default fgm and random: APR Figure 1). */
  readonly adversaries?: readonly string[];
  /** Surfaces to perturb (default: every surface of the model). */
  readonly surfaces?: readonly string[];
  /**
   * Which attacks to run for each gradient adversary (default both):
   * - `training-loss`: the papers' protocol, the perturbation that raises the BPR loss on
   *   sampled training triples (APR section 2.3);
   * - `evaluation`: the perturbation that raises the BPR loss of each evaluated user's
   *   held-out items against their strongest competitors (the `competitors` best-scored
   *   candidates), after which each user keeps the worse of the clean and attacked value of
   *   each metric (an attacker may leave a user alone): it never raises a metric.
   * Random noise does not depend on the target and runs once.
   */
  readonly attacks?: readonly AttackKind[];
  /** Strongest competitors per held-out item for the evaluation-side attack (default 20). */
  readonly competitors?: number;
  /** Seeded draws of random noise averaged per user (default 3). */
  readonly randomDraws?: number;
  /** Confidence of the paired intervals (default 0.95). */
  readonly confidence?: number;
  /**
   * Exact worst cases and certified bounds ({@link worstCaseBounds}) for each perturbed
   * surface the model declares affine, at every epsilon and for the balls of the adversaries
   * compared (default true), under the sweep's protocol.
   */
  readonly bounds?: boolean;
  /**
   * The metric the warnings speak of (default NDCG at the smallest cutoff, see
   * {@link headlineMetric}).
   */
  readonly headlineMetric?: string;
  /** Split to evaluate (default test). */
  readonly split?: 'test' | 'validation';
  /** Cutoffs (default 20 and 100). */
  readonly cutoffs?: readonly number[];
  /** Metrics (default ndcg, recall, hr). */
  readonly metrics?: readonly MetricName[];
  /** Seed of the sampled negatives and the random noise (default 0). */
  readonly seed?: number;
  /** Evaluation threads. */
  readonly threads?: number;
  /**
   * Evaluate with the sampled protocol on this test set (AMR: 999 negatives) instead of
   * full ranking; each point then also reports the distribution of the test items' rank
   * changes (AMR Figure 5).
   */
  readonly testSet?: SampledTestSet;
  /** Stops the sweep between two points (it then rejects with the signal's reason). */
  readonly signal?: AbortSignal;
}

/** Distribution of `attacked rank - clean rank` of the test items (positive = pushed down). */
export interface RankChangeSummary {
  readonly mean: number;
  readonly min: number;
  readonly q1: number;
  readonly median: number;
  readonly q3: number;
  readonly max: number;
  /** Share of cases whose rank did not change. */
  readonly unchanged: number;
  /** Share of cases pushed down. */
  readonly worse: number;
}

/** A relative change with its paired confidence interval over users. */
export interface ChangeInterval {
  /** Lower end of the interval of `(attacked - clean) / clean`. */
  readonly low: number;
  readonly high: number;
  /** Two-sided paired t-test p-value of the per-user differences. */
  readonly pValue: number;
  /** Whether the interval covers zero (no change distinguishable from noise). */
  readonly coversZero: boolean;
}

/** One point of the sweep. */
export interface RobustnessPoint {
  readonly adversary: string;
  /** The adversary's ball per row. */
  readonly norm: 'l2' | 'linf';
  /** The adversary's recorded settings (PGD's steps, step size...), when it has some. */
  readonly adversarySettings?: Readonly<Record<string, number | string | boolean>>;
  /** What the perturbation was crafted against (random noise: `training-loss`). */
  readonly attack: AttackKind;
  /** As given (in units of `epsilonUnit`). */
  readonly epsilon: number;
  readonly absoluteEpsilon: number;
  readonly metrics: Readonly<Record<string, number>>;
  /** `(attacked - clean) / clean` per metric: negative is a drop (APR Table 2). */
  readonly relativeChange: Readonly<Record<string, number>>;
  /** Paired confidence interval of each relative change, over users (or sampled cases). */
  readonly intervals: Readonly<Record<string, ChangeInterval>>;
  /**
   * Pair accuracy under the perturbation on the triples it was crafted on (training triples;
   * held-out items against competitors for the evaluation-side attack).
   */
  readonly trainAccuracy: number;
  /** Random noise: the seeded draws averaged per user. */
  readonly draws?: number;
  /** With the sampled protocol (training-loss attacks): how the test items' ranks moved. */
  readonly rankChange?: RankChangeSummary;
}

/** An exact worst case or certified bound at one epsilon ({@link worstCaseBounds}). */
export interface RobustnessBound {
  readonly surface: string;
  readonly side: 'user' | 'item';
  readonly kind: 'exact' | 'certified';
  readonly norm: 'l2' | 'linf';
  readonly epsilon: number;
  readonly absoluteEpsilon: number;
  readonly metrics: Readonly<Record<string, number>>;
  readonly relativeChange: Readonly<Record<string, number>>;
}

/** The outcome of a sweep. */
export interface RobustnessReport {
  readonly clean: Readonly<Record<string, number>>;
  readonly cleanTrainAccuracy: number;
  readonly points: readonly RobustnessPoint[];
  /** Exact worst cases and certified bounds, one surface at a time (empty when none apply). */
  readonly bounds: readonly RobustnessBound[];
  /** Why there are no bounds, when there are none. */
  readonly boundsNote?: string;
  readonly surfaces: readonly string[];
  readonly split: 'test' | 'validation';
  readonly confidence: number;
  readonly epsilonUnit: number;
  /** What the numbers may not mean, in words ({@link robustnessWarnings}). */
  readonly warnings: readonly RobustnessWarning[];
}

/**
 * APR section 2.3 and Table 2 (AMR Table 3 for feature surfaces): perturb a trained
 * model's surfaces with each adversary at each epsilon (FGM from the BPR gradient over
 * one sampled negative per training interaction; random noise of the same norm per row,
 * averaged over seeded draws), and, for gradient adversaries, the same budget aimed at the
 * evaluated ranking; evaluate, and report each metric, its relative change with a paired
 * interval, the exact or certified worst case where the score is affine in a surface, and
 * warnings on what the numbers may not mean.
 */
export async function robustnessSweep(
  model: Model,
  dataset: Dataset,
  options: RobustnessOptions = {},
): Promise<RobustnessReport> {
  const epsilons = options.epsilons ?? [0.25, 0.5, 1, 2];
  const unit = options.epsilonUnit ?? 1;
  const adversaries = (options.adversaries ?? ['fgm', 'random']).map((name) => getAdversary(name));
  checkOptions(options, epsilons, unit);
  const split = options.split ?? 'test';
  const cutoffs = options.cutoffs ?? [20, 100];
  const metrics = options.metrics ?? (['ndcg', 'recall', 'hr'] as MetricName[]);
  const confidence = options.confidence ?? 0.95;
  const attacks = options.attacks ?? ['training-loss', 'evaluation'];
  const seed = options.seed ?? 0;
  const evaluate = (m: Model): Promise<EvaluationResult> =>
    options.testSet
      ? evaluateSampled(m, dataset, options.testSet, { cutoffs, metrics })
      : evaluateFullRanking(m, dataset, {
          split,
          cutoffs,
          metrics,
          threads: options.threads,
        });
  const cleanResult = await evaluate(model);
  const clean = cleanResult.metrics;
  const cleanRanks = options.testSet ? sampledRanks(model, options.testSet) : null;
  const surfaces = options.surfaces ?? model.surfaces.map((s) => s.name);
  const points: RobustnessPoint[] = [];
  let cleanTrainAccuracy = Number.NaN;
  const evaluationTriples =
    attacks.includes('evaluation') && adversaries.some((a) => a.usesGradient)
      ? await strongestCompetitorTriples(model, dataset, {
          split,
          competitors: options.competitors ?? 20,
          ...(options.testSet ? { testSet: options.testSet } : {}),
          ...(options.threads ? { threads: options.threads } : {}),
        })
      : null;
  for (const adversary of adversaries) {
    const kinds: AttackKind[] = adversary.usesGradient
      ? attacks.filter((a) => a !== 'evaluation' || evaluationTriples !== null)
      : ['training-loss'];
    for (const attack of kinds)
      for (const epsilon of epsilons) {
        // Let signals and timers run between points (the points themselves are long
        // synchronous stretches), then stop if asked.
        await new Promise((resolve) => setImmediate(resolve));
        options.signal?.throwIfAborted();
        const draws = adversary.usesGradient ? 1 : (options.randomDraws ?? 3);
        const runs: { perUser: Record<string, Float64Array>; accuracy: number; model: Model }[] =
          [];
        for (let draw = 0; draw < draws; draw++) {
          const craft = {
            adversary,
            epsilon: epsilon * unit,
            surfaces,
            seed: seed + draw,
          };
          const crafted =
            attack === 'evaluation'
              ? await craftPerturbationOn(model, evaluationTriples!, craft)
              : await craftPerturbation(model, dataset.train, craft);
          if (attack === 'training-loss') cleanTrainAccuracy = crafted.cleanAccuracy;
          const attackedModel = perturbedCopy(model, crafted.perturbations);
          const attacked = await evaluate(attackedModel);
          runs.push({
            perUser: { ...attacked.perUser },
            accuracy: crafted.perturbedAccuracy,
            model: attackedModel,
          });
        }
        const perUser = averagePerUser(runs.map((r) => r.perUser));
        if (attack === 'evaluation')
          // The attacker may leave a user alone: each keeps the worse of clean and attacked.
          for (const [key, values] of Object.entries(perUser)) {
            const before = cleanResult.perUser[key]!;
            for (let b = 0; b < values.length; b++) values[b] = Math.min(values[b]!, before[b]!);
          }
        const change = relativeChanges(cleanResult.perUser, perUser, confidence);
        points.push({
          adversary: adversary.adversaryName,
          norm: adversary.norm ?? 'l2',
          ...(adversary.settings ? { adversarySettings: adversary.settings } : {}),
          attack,
          epsilon,
          absoluteEpsilon: epsilon * unit,
          metrics: change.metrics,
          relativeChange: change.relativeChange,
          intervals: change.intervals,
          trainAccuracy: runs.reduce((s, r) => s + r.accuracy, 0) / runs.length,
          ...(draws > 1 ? { draws } : {}),
          ...(cleanRanks && attack === 'training-loss' && draws === 1
            ? { rankChange: summarise(sampledRanks(runs[0]!.model, options.testSet!), cleanRanks) }
            : {}),
        });
      }
  }
  const { bounds, boundsNote, featureReach } = await sweepBounds(model, dataset, {
    enabled: options.bounds ?? true,
    ...(options.testSet ? { testSet: options.testSet } : {}),
    surfaces,
    epsilons,
    unit,
    norms: [...new Set(adversaries.map((a) => a.norm ?? 'l2'))],
    split,
    cutoffs,
    metrics,
    ...(options.headlineMetric ? { headlineMetric: options.headlineMetric } : {}),
  });
  const report = {
    clean,
    cleanTrainAccuracy,
    points,
    bounds,
    ...(boundsNote ? { boundsNote } : {}),
    surfaces,
    split,
    confidence,
    epsilonUnit: unit,
  };
  return {
    ...report,
    warnings: robustnessWarnings(report, {
      model,
      ...(featureReach ? { featureReach } : {}),
      ...(options.headlineMetric ? { headlineMetric: options.headlineMetric } : {}),
    }),
  };
}

function checkOptions(options: RobustnessOptions, epsilons: readonly number[], unit: number): void {
  const issues: { path: string; message: string }[] = epsilons
    .map((e, k) => ({ e, k }))
    .filter(({ e }) => !(Number.isFinite(e) && e >= 0))
    .map(({ e, k }) => ({
      path: `epsilons[${k}]`,
      message: `must be a finite number >= 0, got ${e}`,
    }));
  if (!(Number.isFinite(unit) && unit > 0))
    issues.push({ path: 'epsilonUnit', message: `must be a finite number > 0, got ${unit}` });
  const positiveInteger = (path: string, value: number | undefined) => {
    if (value !== undefined && !(Number.isInteger(value) && value >= 1))
      issues.push({ path, message: `must be an integer >= 1, got ${value}` });
  };
  positiveInteger('competitors', options.competitors);
  positiveInteger('randomDraws', options.randomDraws);
  if (options.confidence !== undefined && !(options.confidence > 0 && options.confidence < 1))
    issues.push({
      path: 'confidence',
      message: `must be a number in (0, 1), got ${options.confidence}`,
    });
  (options.attacks ?? []).forEach((a, k) => {
    if (a !== 'training-loss' && a !== 'evaluation')
      issues.push({
        path: `attacks[${k}]`,
        message: `must be "training-loss" or "evaluation", got ${JSON.stringify(a)}`,
      });
  });
  if (issues.length > 0) throw new ConfigError(issues);
}

/** The mean per user over several runs (random draws); one run is returned as is. */
function averagePerUser(
  runs: readonly Record<string, Float64Array>[],
): Record<string, Float64Array> {
  const out: Record<string, Float64Array> = {};
  for (const key of Object.keys(runs[0]!)) {
    const sum = Float64Array.from(runs[0]![key]!);
    for (const run of runs.slice(1)) {
      const v = run[key]!;
      for (let b = 0; b < sum.length; b++) sum[b]! += v[b]!;
    }
    if (runs.length > 1) for (let b = 0; b < sum.length; b++) sum[b] = sum[b]! / runs.length;
    out[key] = sum;
  }
  return out;
}

/**
 * Means, relative changes and paired intervals of an attacked evaluation against the clean
 * one, user by user (or case by case): with per-user differences `d_u = attacked_u -
 * clean_u`, the interval of the mean difference is `mean(d) +- t * sd(d) / sqrt(n)`
 * (Student's t at `confidence`, e.g. 0.95), divided by the clean mean (held fixed) for the
 * relative change. What {@link robustnessSweep} reports for every point, for attacks that
 * run outside it (a sequential model's).
 */
export function relativeChanges(
  clean: Readonly<Record<string, Float64Array>>,
  attacked: Readonly<Record<string, Float64Array>>,
  confidence: number,
): {
  metrics: Record<string, number>;
  relativeChange: Record<string, number>;
  intervals: Record<string, ChangeInterval>;
} {
  const metrics: Record<string, number> = {};
  const relativeChange: Record<string, number> = {};
  const intervals: Record<string, ChangeInterval> = {};
  for (const key of Object.keys(clean)) {
    const a = attacked[key]!;
    const c = clean[key]!;
    const n = c.length;
    let sumA = 0;
    let sumC = 0;
    for (let b = 0; b < n; b++) {
      sumA += a[b]!;
      sumC += c[b]!;
    }
    const cleanMean = sumC / n;
    metrics[key] = sumA / n;
    relativeChange[key] = (metrics[key]! - cleanMean) / cleanMean;
    if (n < 2) {
      intervals[key] = { low: Number.NaN, high: Number.NaN, pValue: Number.NaN, coversZero: true };
      continue;
    }
    const test = pairedTTest(a, c);
    const half = tQuantile((1 + confidence) / 2, n - 1) * (test.standardDeviation / Math.sqrt(n));
    const low = (test.meanDifference - half) / cleanMean;
    const high = (test.meanDifference + half) / cleanMean;
    intervals[key] = { low, high, pValue: test.pValue, coversZero: low <= 0 && high >= 0 };
  }
  return { metrics, relativeChange, intervals };
}

/**
 * Triples `(user, held-out item, competitor)` for the evaluation-side attack: each held-out
 * item against the `competitors` best-scored candidates that are not held out (full ranking:
 * the top of the user's ranking; sampled: the case's strongest negatives).
 */
async function strongestCompetitorTriples(
  model: Model,
  dataset: Dataset,
  options: {
    split: 'test' | 'validation';
    competitors: number;
    testSet?: SampledTestSet;
    threads?: number;
  },
): Promise<PerturbationTriples> {
  const users: number[] = [];
  const positives: number[] = [];
  const negatives: number[] = [];
  const c = options.competitors;
  if (options.testSet) {
    const set = options.testSet;
    const n = set.negativesPerCase;
    for (let k = 0; k < set.numCases; k++) {
      const u = set.users[k]!;
      const candidates = set.negatives.subarray(k * n, (k + 1) * n);
      const scores = model.score(new Int32Array(n).fill(u), Int32Array.from(candidates));
      const order = Array.from({ length: n }, (_, t) => t)
        .sort((a, b) => scores[b]! - scores[a]! || candidates[a]! - candidates[b]!)
        .slice(0, c);
      for (const t of order) {
        users.push(u);
        positives.push(set.positives[k]!);
        negatives.push(candidates[t]!);
      }
    }
  } else {
    const top = await evaluateFullRanking(model, dataset, {
      split: options.split,
      cutoffs: [c],
      metrics: ['hr'],
      keepTopLists: true,
      ...(options.threads ? { threads: options.threads } : {}),
    });
    const relevantSplit = options.split === 'test' ? dataset.test! : dataset.validation!;
    const lists = top.topLists!;
    top.users.forEach((u, b) => {
      const held = relevantSplit.row(u);
      const heldSet = new Set(held);
      const competitors = Array.from(lists.subarray(b * c, (b + 1) * c)).filter(
        (i) => i >= 0 && !heldSet.has(i),
      );
      for (const t of held)
        for (const j of competitors) {
          users.push(u);
          positives.push(t);
          negatives.push(j);
        }
    });
  }
  return {
    users: Int32Array.from(users),
    positives: Int32Array.from(positives),
    negatives: Int32Array.from(negatives),
  };
}

/** The bounds of every affine perturbed surface, for each ball of the adversaries compared. */
async function sweepBounds(
  model: Model,
  dataset: Dataset,
  options: {
    enabled: boolean;
    testSet?: SampledTestSet;
    surfaces: readonly string[];
    epsilons: readonly number[];
    unit: number;
    norms: readonly ('l2' | 'linf')[];
    split: 'test' | 'validation';
    cutoffs: readonly number[];
    metrics: readonly MetricName[];
    headlineMetric?: string;
  },
): Promise<{
  bounds: RobustnessBound[];
  boundsNote?: string;
  featureReach?: Readonly<Record<string, number>>;
}> {
  if (!options.enabled) return { bounds: [], boundsNote: 'not asked for' };
  const affine = options.surfaces.filter(
    (name) => model.surfaces.find((s) => s.name === name)?.affine === true,
  );
  if (affine.length === 0)
    return {
      bounds: [],
      boundsNote: `no perturbed surface of ${model.modelName} is affine in its rows (exact worst cases need MF's or VBPR's surfaces)`,
    };
  // How far the worst perturbation as large as a typical row moves a feature surface's
  // scores (L2, relative epsilon 1): near zero, the visual part has collapsed. Computed in
  // the same pass as the bounds, at one more epsilon.
  const reach = affine
    .map((name) => model.surfaces.find((s) => s.name === name)!)
    .filter((s) => s.rowScale !== undefined && s.rowScale > 0);
  const requested = options.epsilons.map((e) => e * options.unit);
  const report = await worstCaseBounds(model, dataset, {
    epsilons: [...new Set([...requested, ...reach.map((s) => s.rowScale!)])],
    surfaces: affine,
    norms: [...new Set([...options.norms, ...(reach.length > 0 ? (['l2'] as const) : [])])],
    split: options.split,
    cutoffs: options.cutoffs,
    metrics: options.metrics,
    ...(options.testSet ? { testSet: options.testSet } : {}),
  });
  const bounds: RobustnessBound[] = report.points
    .filter((p) => options.norms.includes(p.norm) && requested.includes(p.epsilon))
    .map((p) => ({
      surface: p.surface,
      side: p.side,
      kind: p.kind,
      norm: p.norm,
      epsilon: p.epsilon / options.unit,
      absoluteEpsilon: p.epsilon,
      metrics: p.metrics,
      relativeChange: p.relativeChange,
    }));
  const featureReach: Record<string, number> = {};
  for (const surface of reach) {
    const change = report.points.find(
      (p) => p.surface === surface.name && p.norm === 'l2' && p.epsilon === surface.rowScale,
    )!.relativeChange;
    featureReach[surface.name] =
      change[options.headlineMetric ?? headlineMetric(Object.keys(change))]!;
  }
  return { bounds, featureReach };
}

/** 1-based pessimistic rank of each case's positive among its negatives. */
function sampledRanks(model: Model, testSet: SampledTestSet): Int32Array {
  const factors = model.factors?.();
  const n = testSet.negativesPerCase;
  const ranks = new Int32Array(testSet.numCases);
  for (let c = 0; c < testSet.numCases; c++) {
    const u = testSet.users[c]!;
    const items = Int32Array.of(
      testSet.positives[c]!,
      ...testSet.negatives.subarray(c * n, (c + 1) * n),
    );
    const scores = factors
      ? Float64Array.from(items, (i) => dotScore(factors, u, i))
      : model.score(new Int32Array(items.length).fill(u), items);
    let above = 0;
    for (let t = 1; t < scores.length; t++) if (scores[t]! >= scores[0]!) above++;
    ranks[c] = 1 + above;
  }
  return ranks;
}

function summarise(attacked: Int32Array, clean: Int32Array): RankChangeSummary {
  const changes = Float64Array.from(attacked, (r, c) => r - clean[c]!).sort();
  const at = (q: number): number =>
    changes[Math.min(changes.length - 1, Math.floor(q * (changes.length - 1)))]!;
  let sum = 0;
  let unchanged = 0;
  let worse = 0;
  for (const v of changes) {
    sum += v;
    if (v === 0) unchanged++;
    else if (v > 0) worse++;
  }
  return {
    mean: sum / changes.length,
    min: changes[0]!,
    q1: at(0.25),
    median: at(0.5),
    q3: at(0.75),
    max: changes[changes.length - 1]!,
    unchanged: unchanged / changes.length,
    worse: worse / changes.length,
  };
}
