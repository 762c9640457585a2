import { ConfigError } from '@advrec/data';
import type { Dataset } from '@advrec/data';
import { craftPerturbation, getAdversary, perturbedCopy } from '@advrec/adversary';
import { evaluateFullRanking } from '@advrec/metrics';
import type { MetricName } from '@advrec/metrics';
import type { Model } from '@advrec/models';

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
  const evaluation = {
    split,
    cutoffs: options.cutoffs ?? [20, 100],
    metrics: options.metrics ?? (['ndcg', 'recall', 'hr'] as MetricName[]),
    threads: options.threads,
  };
  const evaluate = (m: Model) =>
    evaluateFullRanking(m as Parameters<typeof evaluateFullRanking>[0], dataset, evaluation);
  const clean = (await evaluate(model)).metrics;
  const surfaces = options.surfaces ?? model.surfaces.map((s) => s.name);
  const points: RobustnessPoint[] = [];
  let cleanTrainAccuracy = Number.NaN;
  for (const adversary of adversaries) {
    for (const epsilon of epsilons) {
      const crafted = craftPerturbation(model, dataset.train, {
        adversary,
        epsilon,
        surfaces,
        seed: options.seed ?? 0,
      });
      cleanTrainAccuracy = crafted.cleanAccuracy;
      const attacked = (await evaluate(perturbedCopy(model, crafted.perturbations))).metrics;
      const relativeChange: Record<string, number> = {};
      for (const key of Object.keys(clean))
        relativeChange[key] = (attacked[key]! - clean[key]!) / clean[key]!;
      points.push({
        adversary: adversary.adversaryName,
        epsilon,
        metrics: attacked,
        relativeChange,
        trainAccuracy: crafted.perturbedAccuracy,
      });
    }
  }
  return { clean, cleanTrainAccuracy, points, surfaces, split };
}
