/**
 * Robustness of a trained model (APR Table 2, AMR Table 3): craft a perturbation with an
 * adversary, apply it, evaluate, for several epsilons. Needs a model, an adversary and the
 * metrics, never a training engine.
 */
import { ConfigError } from '@advrec/data';
import type { Dataset, SampledTestSet } from '@advrec/data';
import { craftPerturbation, getAdversary, perturbedCopy } from '@advrec/adversary';
import type { Model } from '@advrec/models';
import { evaluateFullRanking, evaluateSampled } from './evaluate.js';
import type { EvaluationResult } from './evaluate.js';
import type { MetricName } from './metrics.js';
import { dotScore } from './scorer.js';

/** Options of {@link robustnessSweep}. */
export interface RobustnessOptions {
  /** Perturbation sizes (default 0.25, 0.5, 1, 2). */
  readonly epsilons?: readonly number[];
  /** Registered adversaries to compare (default fgm and random: APR Figure 1). */
  readonly adversaries?: readonly string[];
  /** Surfaces to perturb (default: every surface of the model). */
  readonly surfaces?: readonly string[];
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

/** One point of the sweep. */
export interface RobustnessPoint {
  readonly adversary: string;
  readonly epsilon: number;
  readonly metrics: Readonly<Record<string, number>>;
  /** `(attacked - clean) / clean` per metric: negative is a drop (APR Table 2). */
  readonly relativeChange: Readonly<Record<string, number>>;
  /** Training pair accuracy on the sampled triples under the perturbation (APR Figure 1b/d). */
  readonly trainAccuracy: number;
  /** With the sampled protocol: how the test items' ranks moved. */
  readonly rankChange?: RankChangeSummary;
}

/** The outcome of a sweep. */
export interface RobustnessReport {
  readonly clean: Readonly<Record<string, number>>;
  readonly cleanTrainAccuracy: number;
  readonly points: readonly RobustnessPoint[];
  readonly surfaces: readonly string[];
  readonly split: 'test' | 'validation';
}

/**
 * APR section 2.3 and Table 2 (AMR Table 3 for feature surfaces): perturb a trained
 * model's surfaces with each adversary at each epsilon (FGM from the BPR gradient over
 * one sampled negative per training interaction; random noise of the same norm per row),
 * evaluate with full ranking, and report each metric and its relative change.
 */
export async function robustnessSweep(
  model: Model,
  dataset: Dataset,
  options: RobustnessOptions = {},
): Promise<RobustnessReport> {
  const epsilons = options.epsilons ?? [0.25, 0.5, 1, 2];
  const adversaries = (options.adversaries ?? ['fgm', 'random']).map((name) => getAdversary(name));
  const issues = epsilons
    .map((e, k) => ({ e, k }))
    .filter(({ e }) => !(Number.isFinite(e) && e >= 0))
    .map(({ e, k }) => ({
      path: `epsilons[${k}]`,
      message: `must be a finite number >= 0, got ${e}`,
    }));
  if (issues.length > 0) throw new ConfigError(issues);
  const split = options.split ?? 'test';
  const cutoffs = options.cutoffs ?? [20, 100];
  const metrics = options.metrics ?? (['ndcg', 'recall', 'hr'] as MetricName[]);
  const evaluate = (m: Model): Promise<EvaluationResult> =>
    options.testSet
      ? evaluateSampled(m, dataset, options.testSet, { cutoffs, metrics })
      : evaluateFullRanking(m, dataset, {
          split,
          cutoffs,
          metrics,
          threads: options.threads,
        });
  const clean = (await evaluate(model)).metrics;
  const cleanRanks = options.testSet ? sampledRanks(model, options.testSet) : null;
  const surfaces = options.surfaces ?? model.surfaces.map((s) => s.name);
  const points: RobustnessPoint[] = [];
  let cleanTrainAccuracy = Number.NaN;
  for (const adversary of adversaries) {
    for (const epsilon of epsilons) {
      // Let signals and timers run between points (the points themselves are long
      // synchronous stretches), then stop if asked.
      await new Promise((resolve) => setImmediate(resolve));
      options.signal?.throwIfAborted();
      const crafted = await craftPerturbation(model, dataset.train, {
        adversary,
        epsilon,
        surfaces,
        seed: options.seed ?? 0,
      });
      cleanTrainAccuracy = crafted.cleanAccuracy;
      const attackedModel = perturbedCopy(model, crafted.perturbations);
      const attacked = (await evaluate(attackedModel)).metrics;
      const relativeChange: Record<string, number> = {};
      for (const key of Object.keys(clean))
        relativeChange[key] = (attacked[key]! - clean[key]!) / clean[key]!;
      const point: RobustnessPoint = {
        adversary: adversary.adversaryName,
        epsilon,
        metrics: attacked,
        relativeChange,
        trainAccuracy: crafted.perturbedAccuracy,
        ...(cleanRanks
          ? { rankChange: summarise(sampledRanks(attackedModel, options.testSet!), cleanRanks) }
          : {}),
      };
      points.push(point);
    }
  }
  return { clean, cleanTrainAccuracy, points, surfaces, split };
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
