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
import { evaluateFullRanking, pairedTTest } from '@advrec/metrics';
import type { EvaluationResult, MetricName } from '@advrec/metrics';
import { MatrixFactorization, cloneTable, readCheckpoint, restoreModel } from '@advrec/models';
import { Trainer, robustnessSweep } from '@advrec/trainer';
import type { PhaseResult, RobustnessReport, TrainConfig } from '@advrec/trainer';

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
  /** Start both continuations with fresh optimiser state (as the official code's new Adagrad) instead of the checkpoint's. */
  readonly resetOptimizer?: boolean;
  readonly log: (line: string) => void;
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

export async function runAprExperiment(o: AprExperimentOptions): Promise<Record<string, unknown>> {
  const directory = await mkdtemp(join(tmpdir(), 'advrec-quality-'));
  try {
    const test = (model: MatrixFactorization): Promise<EvaluationResult> =>
      // The model was trained on train minus validation; test excludes train and validation items.
      evaluateFullRanking(model, o.tuning, {
        split: 'test',
        cutoffs: o.testCutoffs,
        metrics: o.testMetrics,
      });
    const validation = { every: o.validateEvery, metric: o.validationMetric, patience: o.patience };
    const logEvents = (name: string) => ({
      onValidation: (v: { epoch: number; value: number; improved: boolean }) =>
        o.log(
          `${name} epoch ${v.epoch} ${o.validationMetric} ${v.value.toFixed(4)}${v.improved ? ' *' : ''}`,
        ),
    });

    // 1. MF-BPR to convergence.
    const bprModel = new MatrixFactorization(o.tuning, { embeddingSize: 64, seed: 1 });
    const bprTrainer = await Trainer.create(
      bprModel,
      o.tuning,
      { ...o.base, validation },
      logEvents('bpr'),
    );
    const bprCheckpoint = join(directory, 'bpr.ckpt');
    const bprPhase = await bprTrainer.runPhase({
      epochs: o.bprMaxEpochs,
      adversarial: false,
      checkpoint: bprCheckpoint,
    });
    await bprTrainer.close();
    const bprTest = await test(bprModel);
    o.log(`MF-BPR test ${JSON.stringify(bprTest.metrics)}`);

    // 2. From the checkpoint: BPR continued vs AMF, same epochs, both resuming the
    // checkpoint's Adagrad state (or both fresh, with resetOptimizer).
    const checkpoint = await readCheckpoint(bprCheckpoint);
    // A fresh copy of the checkpoint's tables for each arm (restore does not copy).
    const fromCheckpoint = () =>
      restoreModel({
        ...checkpoint.model,
        tables: checkpoint.model.tables.map(cloneTable),
      }) as MatrixFactorization;
    const resume = o.resetOptimizer
      ? undefined
      : {
          extraTables: checkpoint.extraTables,
          epoch: Number(checkpoint.metadata.epoch),
          step: Number(checkpoint.metadata.step),
        };
    const continued = fromCheckpoint();
    const continuedTrainer = await Trainer.create(
      continued,
      o.tuning,
      { ...o.base, validation },
      logEvents('bpr+'),
      resume,
    );
    const continuedPhase = await continuedTrainer.runPhase({
      epochs: o.continueEpochs,
      adversarial: false,
    });
    await continuedTrainer.close();
    const continuedTest = await test(continued);
    o.log(`BPR continued test ${JSON.stringify(continuedTest.metrics)}`);

    const amfRuns: { epsilon: number; model: MatrixFactorization; phase: PhaseResult }[] = [];
    for (const epsilon of o.epsilons) {
      const amf = fromCheckpoint();
      const trainer = await Trainer.create(
        amf,
        o.tuning,
        {
          ...o.base,
          validation,
          adversarial: { adversary: 'fgm', epsilon, adversarialWeight: o.adversarialWeight },
        },
        logEvents(`amf(eps=${epsilon})`),
        resume,
      );
      const phase = await trainer.runPhase({ epochs: o.continueEpochs, adversarial: true });
      await trainer.close();
      amfRuns.push({ epsilon, model: amf, phase });
    }
    // Light tuning: the epsilon with the best validation value.
    const chosen = amfRuns.reduce((best, run) =>
      run.phase.bestValue > best.phase.bestValue ? run : best,
    );
    const amfTest = await test(chosen.model);
    o.log(`AMF(eps=${chosen.epsilon}) test ${JSON.stringify(amfTest.metrics)}`);

    const comparison: Record<string, unknown> = {};
    for (const key of Object.keys(amfTest.metrics)) {
      const amfValue = amfTest.metrics[key]!;
      const bprValue = continuedTest.metrics[key]!;
      const t = pairedTTest(amfTest.perUser[key]!, continuedTest.perUser[key]!);
      comparison[key] = {
        mfBpr: bprTest.metrics[key],
        bprContinued: bprValue,
        amf: amfValue,
        relativeImprovementOverBprContinued: (amfValue - bprValue) / bprValue,
        relativeImprovementOverMfBpr: (amfValue - bprTest.metrics[key]!) / bprTest.metrics[key]!,
        pairedTTest: { t: t.t, pValue: t.pValue, n: t.n },
      };
    }

    // 3. Robustness of both (Table 2 / Figure 1).
    const sweep = (model: MatrixFactorization): Promise<RobustnessReport> =>
      robustnessSweep(model, o.tuning, {
        epsilons: o.sweepEpsilons,
        adversaries: ['fgm', 'random'],
        cutoffs: o.sweepCutoffs,
        metrics: ['ndcg', 'recall', 'hr'],
        seed: 7,
      });
    const robustness = { bprContinued: await sweep(continued), amf: await sweep(chosen.model) };
    for (const [name, report] of Object.entries(robustness))
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
        config: {
          embeddingSize: 64,
          batchSize: 512,
          optimizer: 'adagrad lr 0.05 (initial accumulator 0.1)',
          ...o.base,
        },
        continuation: `${o.continueEpochs} epochs from the MF-BPR checkpoint for both arms, ${o.resetOptimizer ? 'fresh Adagrad state' : "the checkpoint's Adagrad state"}, best validation epoch kept`,
        amfEpsilonsTried: o.epsilons,
        amfEpsilonChosenOnValidation: chosen.epsilon,
        adversarialWeight: o.adversarialWeight,
      },
      mfBpr: { training: summary(bprPhase), test: bprTest.metrics },
      bprContinued: { training: summary(continuedPhase), test: continuedTest.metrics },
      amf: Object.fromEntries(
        amfRuns.map((r) => [`epsilon=${r.epsilon}`, { training: summary(r.phase) }]),
      ),
      amfTest: amfTest.metrics,
      comparison,
      robustness,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
