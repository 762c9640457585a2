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
import type { BenchContext } from './context.js';
import { fastPretraining, runAprExperiment } from './lib/apr-experiment.js';

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const evaluation = givenSplit(
    await readUserItemLists(join(sharedData, 'gowalla', 'train.txt')),
    await readUserItemLists(join(sharedData, 'gowalla', 'test.txt')),
  );
  const tuning = holdOutValidation(evaluation, { seed: 1, order: 'random' });
  const epsilons = (process.env.ADVREC_AMF_EPSILONS ?? '0.5').split(',').map(Number);
  const results = await runAprExperiment({
    tuning,
    evaluation,
    validationMetric: 'recall@20',
    testCutoffs: [20],
    testMetrics: ['recall', 'ndcg', 'hr', 'precision'],
    bprMaxEpochs: Number(
      process.env.ADVREC_BPR_EPOCHS ?? (process.env.ADVREC_PRETRAINING === 'adagrad' ? 1000 : 1500),
    ),
    continueEpochs: Number(process.env.ADVREC_CONTINUE_EPOCHS ?? 200),
    validateEvery: 10,
    patience: 5,
    epsilons,
    adversarialWeight: 1,
    sweepEpsilons: [0.25, 0.5, 1, 2],
    sweepCutoffs: [20, 100],
    base: { seed: 1, batchSize: 512, l2: 0 },
    ...fastPretraining({ every: 50, users: 10_000, metric: 'recall@20', patience: 4 }),
    resetOptimizer: process.env.ADVREC_RESET_OPTIMIZER === '1',
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
