/**
 * The README's main job until the CLI exists: the APR pipeline end to end on an embedded
 * default (a synthetic data set with planted preferences; or a MovieLens `u.data` file given
 * as the first argument): ItemPop, MF-BPR with early stopping, then AMF versus BPR continued
 * from the same checkpoint, a paired t-test, and the robustness of both to FGM and random
 * perturbations of their embeddings (APR Table 2).
 */
import { availableParallelism } from 'node:os';
import {
  generateSynthetic,
  holdOutValidation,
  leaveOneOut,
  readMovieLens100K,
  toImplicit,
} from '@advrec/data';
import { evaluateFullRanking, pairedTTest } from '@advrec/metrics';
import type { EvaluationResult } from '@advrec/metrics';
import { ItemPop, MatrixFactorization, cloneTable } from '@advrec/models';
import type { Model } from '@advrec/models';
import { Trainer, robustnessSweep } from './index.js';

const percent = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;

async function main(): Promise<void> {
  const path = process.argv.slice(2).find((argument) => argument !== '--');
  const log = path
    ? toImplicit(await readMovieLens100K(path))
    : generateSynthetic({ users: 2000, items: 1500, seed: 42 }).log;
  const dataset = holdOutValidation(leaveOneOut(log, { seed: 42 }));
  console.log(
    `${path ?? 'embedded synthetic data (2,000 users, 1,500 items, planted preferences)'}: ${dataset.numUsers} users, ${dataset.numItems} items, ${dataset.train.nnz} training interactions; leave-one-out, latest to test and the latest of the rest to validation`,
  );
  const cutoffs = [10, 50];
  const test = (model: Model): Promise<EvaluationResult> =>
    evaluateFullRanking(model as Parameters<typeof evaluateFullRanking>[0], dataset, {
      cutoffs,
      metrics: ['hr', 'ndcg'],
    });
  const threads = Math.min(2, availableParallelism());
  const config = {
    seed: 1,
    threads,
    validation: { every: 5, metric: 'ndcg@50', patience: 4 },
  } as const;

  const popularity = await test(new ItemPop(dataset.train));
  const mf = new MatrixFactorization(dataset, { embeddingSize: 64, seed: 1 });
  const bpr = await Trainer.create(mf, dataset, config, { onLog: (m) => console.log(m) });
  const t0 = performance.now();
  const phase = await bpr.runPhase({ epochs: 300, adversarial: false });
  await bpr.close();
  const rate = phase.epochs.reduce((s, e) => s + e.triplesPerSecond, 0) / phase.epochs.length;
  console.log(
    `MF-BPR: ${phase.epochs.length} epochs in ${((performance.now() - t0) / 1000).toFixed(1)} s (${(rate / 1e6).toFixed(2)} M triples/s), best validation ndcg@50 ${phase.bestValue.toFixed(4)} at epoch ${phase.bestEpoch}`,
  );
  const mfBpr = await test(mf);

  // Algorithm 1: from the BPR parameters, APR (AMF) versus BPR continued for as many epochs.
  const copy = (): MatrixFactorization =>
    new MatrixFactorization(dataset, mf.config, {
      userEmbeddings: cloneTable(mf.userEmbeddings),
      itemEmbeddings: cloneTable(mf.itemEmbeddings),
    });
  const continued = copy();
  const amf = copy();
  for (const [model, adversarial] of [
    [continued, false],
    [amf, true],
  ] as const) {
    const trainer = await Trainer.create(model, dataset, {
      ...config,
      adversarial: { epsilon: 0.5, adversarialWeight: 1 },
    });
    await trainer.runPhase({ epochs: 60, adversarial });
    await trainer.close();
  }
  const bprPlus = await test(continued);
  const apr = await test(amf);
  console.log('\ntest (full ranking, training and validation items excluded)');
  console.log(
    'model            ' +
      Object.keys(apr.metrics)
        .map((k) => k.padStart(9))
        .join(''),
  );
  for (const [name, r] of [
    ['ItemPop', popularity],
    ['MF-BPR', mfBpr],
    ['BPR continued', bprPlus],
    ['AMF (eps 0.5)', apr],
  ] as const)
    console.log(
      name.padEnd(17) +
        Object.values(r.metrics)
          .map((v) => v.toFixed(4).padStart(9))
          .join(''),
    );
  const t = pairedTTest(apr.perUser['ndcg@50']!, bprPlus.perUser['ndcg@50']!);
  console.log(
    `AMF vs BPR continued, ndcg@50: ${percent((apr.metrics['ndcg@50']! - bprPlus.metrics['ndcg@50']!) / bprPlus.metrics['ndcg@50']!)}, paired t-test p = ${t.pValue.toExponential(2)}`,
  );

  console.log(
    '\nrobustness: relative change of test ndcg@50 when the embeddings are perturbed (APR Table 2)',
  );
  for (const [name, model] of [
    ['BPR continued', continued],
    ['AMF', amf],
  ] as const) {
    const report = await robustnessSweep(model, dataset, {
      epsilons: [0.5, 1, 2],
      cutoffs: [50],
      metrics: ['ndcg'],
    });
    console.log(
      `${name.padEnd(14)} ` +
        report.points
          .map((p) => `${p.adversary} ${p.epsilon}: ${percent(p.relativeChange['ndcg@50']!)}`)
          .join('  '),
    );
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
