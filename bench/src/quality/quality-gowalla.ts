/**
 * `pnpm bench quality-gowalla` (about 26 minutes): MF-BPR (K=64) to convergence on the
 * real Gowalla split (LightGCN's train/test) by the fast path that `time-to-quality` tuned
 * (per-triple SGD, Cornac's algorithm: item bias, lr 0.05, L2 0.001, 2 threads, early
 * stopping on a 10,000-user validation sample every 50 epochs), full-ranking Recall@20 and
 * NDCG@20 on its test file (published MF-BPR: 0.1291 / 0.1109); then AMF (epsilon 0.5,
 * lambda 1, APR's mini-batch Adagrad) from the BPR checkpoint versus BPR continued, paired
 * t-test, and the robustness sweep. ADVREC_PRETRAINING=adagrad runs the paper's mini-batch
 * Adagrad pre-training instead (about 45 minutes).
 */
import { join } from 'node:path';
import { givenSplit, holdOutValidation, readUserItemLists } from '@advrec/data';
import type { BenchAbout, BenchContext, BenchOptionSpec, BenchOptionValues } from '../context.js';
import { fastPretraining, runAprExperiment } from '../lib/apr-experiment.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
export const about: BenchAbout = {
  kind: 'quality',
  what: "MF-BPR to convergence on the Gowalla split (validation carved from train, early stopping), test Recall/NDCG@20; AMF vs BPR continued from the BPR checkpoint, paired t-test; robustness sweep (FGM vs random, epsilon 0.25-2) of both; about 26 min (per-triple SGD pre-training; ADVREC_PRETRAINING=adagrad: the paper's Adagrad, about 45 min)",
  figures:
    '`mfBpr.test`, `bprContinued.test`, `amfTest`, `comparison` (relative improvements, p-values), `robustness`',
};

/** Options (`pnpm bench quality-gowalla --option value`). */
export const options = {
  amfEpsilons: { description: 'AMF epsilons tried; validation picks one', default: [0.5] },
  pretraining: {
    description: "MF-BPR pre-training: per-triple SGD (the fast path) or the paper's Adagrad",
    default: 'sgd',
    choices: ['sgd', 'adagrad'],
  },
  bprEpochs: { description: 'most pre-training epochs (0: SGD 1500, Adagrad 1000)', default: 0 },
  continueEpochs: { description: 'epochs of BPR continued and of AMF', default: 200 },
  resetOptimizer: { description: 'continue with a fresh optimiser state', default: false },
} satisfies BenchOptionSpec;

export async function run(context: BenchContext): Promise<Record<string, unknown>> {
  const { sharedData, log } = context;
  const o = context.options as BenchOptionValues<typeof options>;
  const evaluation = givenSplit(
    await readUserItemLists(join(sharedData, 'gowalla', 'train.txt')),
    await readUserItemLists(join(sharedData, 'gowalla', 'test.txt')),
  );
  const tuning = holdOutValidation(evaluation, { seed: 1, order: 'random' });
  const epsilons = o.amfEpsilons;
  const results = await runAprExperiment({
    tuning,
    evaluation,
    validationMetric: 'recall@20',
    testCutoffs: [20],
    testMetrics: ['recall', 'ndcg', 'hr', 'precision'],
    bprMaxEpochs: o.bprEpochs || (o.pretraining === 'adagrad' ? 1000 : 1500),
    continueEpochs: o.continueEpochs,
    validateEvery: 10,
    patience: 5,
    epsilons,
    adversarialWeight: 1,
    sweepEpsilons: [0.25, 0.5, 1, 2],
    sweepCutoffs: [20, 100],
    base: { seed: 1, batchSize: 512, l2: 0 },
    ...fastPretraining(o.pretraining, {
      every: 50,
      users: 10_000,
      metric: 'recall@20',
      patience: 4,
    }),
    resetOptimizer: o.resetOptimizer,
    log,
  });
  return {
    dataset: 'gowalla (LightGCN split: 29,858 users, 40,981 items, 810,128 train / 217,242 test)',
    published: {
      mfBprRecall20: 0.1291,
      mfBprNdcg20: 0.1109,
      source: 'LightGCN paper, Table 3 (MF-BPR)',
    },
    ...results,
  };
}
