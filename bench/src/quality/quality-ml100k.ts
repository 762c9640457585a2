/**
 * `pnpm bench quality-ml100k`: the APR experiment on MovieLens-100K with leave-one-out
 * (latest interaction to test), HR and NDCG at 50 and 100 (APR Table 3's protocol). MF-BPR is
 * pre-trained by the fast path (per-triple SGD, Cornac's item bias and L2 0.001, 2 threads),
 * its learning rate chosen on validation from {0.05, 0.02, 0.01} (validation every 10 epochs,
 * patience 10); AMF and BPR continued then run APR's mini-batch Adagrad from that checkpoint
 * with a fresh state. ADVREC_PRETRAINING=adagrad runs the paper's mini-batch
 * Adagrad pre-training instead (the earlier route).
 */
import { join } from 'node:path';
import { holdOutValidation, leaveOneOut, readMovieLens100K, toImplicit } from '@advrec/data';
import type { BenchAbout, BenchContext, BenchOptionSpec, BenchOptionValues } from '../context.js';
import { chooseSgdLearningRate, fastPretraining, runAprExperiment } from '../lib/apr-experiment.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
export const about: BenchAbout = {
  kind: 'quality',
  what: 'the same on MovieLens-100K, leave-one-out (latest), HR/NDCG at 50 and 100',
  figures: 'as above',
};

/** Options (`pnpm bench quality-ml100k --option value`). */
export const options = {
  amfEpsilons: { description: 'AMF epsilons tried; validation picks one', default: [0.25, 0.5, 1] },
  pretraining: {
    description: "MF-BPR pre-training: per-triple SGD (the fast path) or the paper's Adagrad",
    default: 'sgd',
    choices: ['sgd', 'adagrad'],
  },
  bprEpochs: { description: 'most pre-training epochs (0: SGD 2000, Adagrad 1000)', default: 0 },
  continueEpochs: { description: 'epochs of BPR continued and of AMF', default: 300 },
  resetOptimizer: { description: 'continue with a fresh optimiser state', default: false },
} satisfies BenchOptionSpec;

export async function run(context: BenchContext): Promise<Record<string, unknown>> {
  const { sharedData, log } = context;
  const o = context.options as BenchOptionValues<typeof options>;
  const evaluation = leaveOneOut(
    toImplicit(await readMovieLens100K(join(sharedData, 'movielens-100k', 'u.data'))),
  );
  const tuning = holdOutValidation(evaluation, { order: 'latest' });
  const epsilons = o.amfEpsilons;
  // The fast path's learning rate, chosen on validation (Cornac's 0.05 overfits this dense
  // set within 50 epochs); L2 stays Cornac's 0.001.
  const validation = { every: 10, metric: 'ndcg@100', patience: 10 } as const;
  const sgd =
    o.pretraining === 'adagrad'
      ? null
      : await chooseSgdLearningRate(tuning, [0.05, 0.02, 0.01], validation, 2000, log);
  const results = await runAprExperiment({
    tuning,
    evaluation,
    validationMetric: 'ndcg@100',
    testCutoffs: [50, 100],
    testMetrics: ['hr', 'ndcg'],
    bprMaxEpochs: o.bprEpochs || (o.pretraining === 'adagrad' ? 1000 : 2000),
    continueEpochs: o.continueEpochs,
    validateEvery: 10,
    patience: 10,
    epsilons,
    adversarialWeight: 1,
    sweepEpsilons: [0.25, 0.5, 1, 2],
    sweepCutoffs: [50, 100],
    base: { seed: 1, batchSize: 512, l2: 0 },
    ...fastPretraining(o.pretraining, validation, sgd?.chosen),
    resetOptimizer: o.resetOptimizer,
    log,
  });
  return {
    ...(sgd ? { sgdLearningRateOnValidation: sgd } : {}),
    dataset:
      'MovieLens-100K, every rating as an interaction, leave-one-out (latest to test, latest of the rest to validation)',
    ...results,
  };
}
