/**
 * `pnpm bench quality-ml100k`: the APR experiment on MovieLens-100K with leave-one-out
 * (latest interaction to test), HR and NDCG at 50 and 100 (APR Table 3's protocol).
 */
import { join } from 'node:path';
import { holdOutValidation, leaveOneOut, readMovieLens100K, toImplicit } from '@advrec/data';
import type { BenchContext } from './context.js';
import { runAprExperiment } from './lib/apr-experiment.js';

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const evaluation = leaveOneOut(
    toImplicit(await readMovieLens100K(join(sharedData, 'movielens-100k', 'u.data'))),
  );
  const tuning = holdOutValidation(evaluation, { order: 'latest' });
  const epsilons = (process.env.ADVREC_AMF_EPSILONS ?? '0.25,0.5,1').split(',').map(Number);
  const results = await runAprExperiment({
    tuning,
    evaluation,
    validationMetric: 'ndcg@100',
    testCutoffs: [50, 100],
    testMetrics: ['hr', 'ndcg'],
    bprMaxEpochs: Number(process.env.ADVREC_BPR_EPOCHS ?? 1000),
    continueEpochs: Number(process.env.ADVREC_CONTINUE_EPOCHS ?? 300),
    validateEvery: 10,
    patience: 10,
    epsilons,
    adversarialWeight: 1,
    sweepEpsilons: [0.25, 0.5, 1, 2],
    sweepCutoffs: [50, 100],
    base: { seed: 1, batchSize: 512, l2: 0 },
    resetOptimizer: process.env.ADVREC_RESET_OPTIMIZER === '1',
    log,
  });
  return {
    dataset:
      'MovieLens-100K, every rating as an interaction, leave-one-out (latest to test, latest of the rest to validation)',
    ...results,
  };
}
