/**
 * The README's main job until the CLI exists: a train-free data demo on an embedded
 * default (a synthetic data set with planted preferences), or on a MovieLens `u.data`
 * file given as the first argument.
 */
import {
  describe,
  formatDescription,
  generateSampledTestSet,
  generateSynthetic,
  holdOutValidation,
  leaveOneOut,
  readMovieLens100K,
  TripleSampler,
} from './index.js';

async function main(): Promise<void> {
  const path = process.argv.slice(2).find((argument) => argument !== '--');
  const started = performance.now();
  const log = path
    ? await readMovieLens100K(path)
    : generateSynthetic({ users: 2000, items: 1500, seed: 42 }).log;
  const loadSeconds = (performance.now() - started) / 1000;
  const dataset = holdOutValidation(leaveOneOut(log, { seed: 42 }));
  console.log(formatDescription(describe(dataset)));
  console.log(`  loaded in ${loadSeconds.toFixed(3)} s`);

  const sampler = new TripleSampler(dataset.train, { seed: 42, batchSize: 512 });
  const first = sampler.batch(0, 0);
  const show = (t: number): string =>
    `(${dataset.userIdMap.toSource(first.users[t]!)}, +${dataset.itemIdMap.toSource(first.positives[t]!)}, -${dataset.itemIdMap.toSource(first.negatives[t]!)})`;
  console.log(
    `\nBPR triples, epoch 0, batch 0 of ${sampler.batchesPerEpoch}: ${[0, 1, 2].map(show).join(' ')} ...`,
  );
  const out = sampler.allocate();
  const t0 = performance.now();
  let triples = 0;
  for (let epoch = 0; epoch < 5; epoch++) {
    for (let b = 0; b < sampler.batchesPerEpoch; b++) triples += sampler.batch(epoch, b, out).size;
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `sampled ${triples.toLocaleString('en-US')} triples in 5 epochs: ${(triples / seconds / 1e6).toFixed(1)} million triples/s on one core`,
  );

  const sampled = generateSampledTestSet(dataset, { negatives: 99, seed: 42 });
  console.log(
    `sampled-negative test set: ${sampled.numCases} cases x ${sampled.negativesPerCase} negatives (NCF protocol), ${sampled.source}`,
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
