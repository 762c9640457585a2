/**
 * The APR experiment of section 4.2, shared by the quality benchmarks: MF-BPR trained to
 * convergence (early stopping on a validation split carved from train), then, from that
 * checkpoint, AMF (APR) versus BPR continued for the same number of epochs, compared on
 * test with a paired t-test, and both attacked (robustness sweep, Table 2).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dataset } from '@advrec/data';
import { evaluateFullRanking } from '@advrec/metrics';
import type { MetricName } from '@advrec/metrics';
import { MatrixFactorization } from '@advrec/models';
import { Trainer, runAprExperiment as runApr } from '@advrec/trainer';
import type { PhaseResult, TrainConfig } from '@advrec/trainer';

export interface AprExperimentOptions {
  /** Train minus validation, with the validation split (used for early stopping and tuning). */
  readonly tuning: Dataset;
  /** Full train with the test split (what is reported). */
  readonly evaluation: Dataset;
  readonly validationMetric: string;
  readonly testCutoffs: readonly number[];
  readonly testMetrics: readonly MetricName[];
  readonly bprMaxEpochs: number;
  readonly continueEpochs: number;
  readonly validateEvery: number;
  readonly patience: number;
  readonly epsilons: readonly number[];
  readonly adversarialWeight: number;
  readonly sweepEpsilons: readonly number[];
  readonly sweepCutoffs: readonly number[];
  readonly base: TrainConfig;
  /**
   * MF-BPR's own training (the fast path: per-triple SGD with Cornac's item bias) when it
   * differs from `base`; the continuations then run `base` (APR's mini-batch Adagrad).
   */
  readonly pretraining?: {
    readonly train: TrainConfig;
    readonly itemBias: boolean;
    readonly description: string;
  };
  /** Start both continuations with fresh optimiser state (as the official code's new Adagrad) instead of the checkpoint's. */
  readonly resetOptimizer?: boolean;
  readonly log: (line: string) => void;
}

/**
 * MF-BPR pre-training by the fast path `time-to-quality` tuned on Gowalla (per-triple SGD,
 * Cornac's item bias, lr 0.05, L2 0.001, 2 threads) with the given validation; none (the
 * paper's mini-batch Adagrad, `base`) when `pretraining` is `adagrad`.
 */
export function fastPretraining(
  pretraining: string,
  validation: {
    readonly every: number;
    readonly metric: string;
    readonly patience: number;
    readonly users?: number;
  },
  learningRate = 0.05,
): Pick<AprExperimentOptions, 'pretraining'> {
  if (pretraining === 'adagrad') return {};
  const sample = validation.users ? ` on ${validation.users.toLocaleString('en-US')} users` : '';
  return {
    pretraining: {
      train: {
        seed: 1,
        algorithm: 'sgd-triples',
        optimizer: { name: 'sgd', learningRate },
        l2: 0.001,
        threads: 2,
        validation,
      },
      itemBias: true,
      description: `per-triple SGD (Cornac), item bias, lr ${learningRate}, L2 0.001, 2 threads; validation every ${validation.every} epochs${sample}, patience ${validation.patience}`,
    },
  };
}

/**
 * The fast path's learning rate chosen on validation: MF-BPR (item bias) by per-triple SGD
 * with each rate of `rates`, early stopping as `validation` says; returns every rate's best
 * validation value, epoch and seconds, and the best rate.
 */
export async function chooseSgdLearningRate(
  tuning: Dataset,
  rates: readonly number[],
  validation: { readonly every: number; readonly metric: string; readonly patience: number },
  maxEpochs: number,
  log: (line: string) => void,
): Promise<{ chosen: number; grid: Record<string, unknown>[] }> {
  const grid: {
    learningRate: number;
    bestValidation: number;
    bestEpoch: number;
    seconds: number;
  }[] = [];
  for (const learningRate of rates) {
    const { pretraining } = fastPretraining('sgd', validation, learningRate);
    const model = new MatrixFactorization(tuning, { embeddingSize: 64, seed: 1, itemBias: true });
    const trainer = await Trainer.create(model, tuning, pretraining!.train);
    const started = performance.now();
    try {
      const phase = await trainer.runPhase({ epochs: maxEpochs, adversarial: false });
      grid.push({
        learningRate,
        bestValidation: phase.bestValue,
        bestEpoch: phase.bestEpoch + 1,
        seconds: (performance.now() - started) / 1000,
      });
      log(
        `sgd lr ${learningRate}: best ${validation.metric} ${phase.bestValue.toFixed(4)} at epoch ${phase.bestEpoch + 1}`,
      );
    } finally {
      await trainer.close();
    }
  }
  const best = grid.reduce((a, b) => (b.bestValidation > a.bestValidation ? b : a));
  return { chosen: best.learningRate, grid };
}

function summary(result: PhaseResult): Record<string, unknown> {
  return {
    epochsRun: result.epochs.length,
    bestEpoch: result.bestEpoch,
    bestValidation: result.bestValue,
    stoppedEarly: result.stoppedEarly,
    medianTriplesPerSecond: Math.round(
      [...result.epochs.map((e) => e.triplesPerSecond)].sort((a, b) => a - b)[
        result.epochs.length >> 1
      ] ?? 0,
    ),
    validationCurve: result.validations.map((v) => ({ epoch: v.epoch, value: v.value })),
  };
}

/**
 * The benchmark's protocol around the library's `runAprExperiment` (the one APR recipe):
 * continuations resume the checkpoint's Adagrad state (or fresh ones), keep their best
 * validation epoch and stop early; AMF's epsilon is chosen on validation.
 */
export async function runAprExperiment(o: AprExperimentOptions): Promise<Record<string, unknown>> {
  const directory = await mkdtemp(join(tmpdir(), 'advrec-quality-'));
  try {
    const validation = { every: o.validateEvery, metric: o.validationMetric, patience: o.patience };
    const result = await runApr(o.tuning, {
      embeddingSize: 64,
      modelSeed: 1,
      train: {
        ...o.base,
        validation,
        adversarial: { adversary: 'fgm', adversarialWeight: o.adversarialWeight },
      },
      bprEpochs: o.bprMaxEpochs,
      ...(o.pretraining
        ? { pretrainingTrain: o.pretraining.train, itemBias: o.pretraining.itemBias }
        : {}),
      continueEpochs: o.continueEpochs,
      epsilons: o.epsilons,
      continuation: {
        optimizerState: o.resetOptimizer ? 'fresh' : 'checkpoint',
        keepBest: true,
        earlyStopping: true,
      },
      checkpoints: directory,
      // The model was trained on train minus validation; test excludes train and validation items.
      evaluate: (model) =>
        evaluateFullRanking(model, o.tuning, {
          split: 'test',
          cutoffs: o.testCutoffs,
          metrics: o.testMetrics,
        }),
      robustness: {
        epsilons: o.sweepEpsilons,
        adversaries: ['fgm', 'random'],
        cutoffs: o.sweepCutoffs,
        metrics: ['ndcg', 'recall', 'hr'],
        seed: 7,
      },
      callbacks: (stage) => ({
        onValidation: (v) =>
          o.log(
            `${stage} epoch ${v.epoch} ${o.validationMetric} ${v.value.toFixed(4)}${v.improved ? ' *' : ''}`,
          ),
      }),
    });
    const test = Object.fromEntries(result.test);
    const mfBpr = test['MF-BPR']!;
    const continued = test['BPR continued']!;
    const amf = result.test.at(-1)![1];
    const comparison: Record<string, unknown> = {};
    for (const [key, c] of Object.entries(result.comparison.metrics))
      comparison[key] = {
        mfBpr: mfBpr.metrics[key],
        bprContinued: c.b,
        amf: c.a,
        relativeImprovementOverBprContinued: c.relative,
        relativeImprovementOverMfBpr: (c.a - mfBpr.metrics[key]!) / mfBpr.metrics[key]!,
        pairedTTest: { pValue: c.tTestP },
        wilcoxon: { pValue: c.wilcoxonP },
      };
    for (const { name, report } of result.robustness)
      for (const p of report.points)
        o.log(
          `robustness ${name} ${p.adversary} eps=${p.epsilon}: ${Object.entries(p.relativeChange)
            .map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`)
            .join(', ')}`,
        );
    return {
      protocol: {
        training:
          'train minus one random validation interaction per user (validation split carved from train)',
        test: 'full ranking over all items, training and validation items excluded, pessimistic ties',
        earlyStopping: `best ${o.validationMetric} on validation every ${o.validateEvery} epochs, patience ${o.patience} validations`,
        ...(o.pretraining
          ? {
              pretraining: {
                description: o.pretraining.description,
                itemBias: o.pretraining.itemBias,
                config: o.pretraining.train,
              },
            }
          : {}),
        config: {
          embeddingSize: 64,
          batchSize: 512,
          optimizer: 'adagrad lr 0.05 (initial accumulator 0.1)',
          ...o.base,
        },
        continuation: `${o.continueEpochs} epochs from the MF-BPR checkpoint for both arms, ${o.resetOptimizer || (o.pretraining && (o.pretraining.train.optimizer?.name ?? 'adagrad') !== (o.base.optimizer?.name ?? 'adagrad')) ? 'fresh Adagrad state' : "the checkpoint's Adagrad state"}, best validation epoch kept`,
        amfEpsilonsTried: o.epsilons,
        amfEpsilonChosenOnValidation: result.chosenEpsilon,
        adversarialWeight: o.adversarialWeight,
      },
      mfBpr: { training: summary(result.pretraining), test: mfBpr.metrics },
      bprContinued: { training: summary(result.arms.at(-2)!.phase!), test: continued.metrics },
      amf: Object.fromEntries(
        result.amfRuns.map((r) => [`epsilon=${r.epsilon}`, { training: summary(r.phase) }]),
      ),
      amfTest: amf.metrics,
      comparison,
      robustness: {
        bprContinued: result.robustness[0]!.report,
        amf: result.robustness[1]!.report,
      },
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
