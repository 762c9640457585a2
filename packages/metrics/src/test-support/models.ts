import { IdMap, InteractionMatrix, Random, type Dataset } from '@advrec/data';
import { factorizedScorer, type FactorizedScorer, type Scorer } from '../index.js';

/** Gaussian factors, seeded: a random MF model. */
export function randomModel(
  numUsers: number,
  numItems: number,
  dimension: number,
  seed: number,
  bias = false,
): FactorizedScorer {
  const random = new Random(seed);
  return factorizedScorer({
    userFactors: Float32Array.from({ length: numUsers * dimension }, () => random.nextGaussian()),
    itemFactors: Float32Array.from({ length: numItems * dimension }, () => random.nextGaussian()),
    dimension,
    itemBias: bias
      ? Float32Array.from({ length: numItems }, () => random.nextGaussian())
      : undefined,
  });
}

/**
 * A model that has learnt its training data, as a trained one has: each user's factor is
 * the sum of its training items' (random) factors, so its training items score highest
 * and crowd the top of its list.
 */
export function fittedModel(dataset: Dataset, dimension: number, seed: number): FactorizedScorer {
  const random = new Random(seed);
  const itemFactors = Float32Array.from({ length: dataset.numItems * dimension }, () =>
    random.nextGaussian(),
  );
  const userFactors = new Float32Array(dataset.numUsers * dimension);
  for (let u = 0; u < dataset.numUsers; u++)
    for (const i of dataset.train.row(u))
      for (let f = 0; f < dimension; f++)
        userFactors[u * dimension + f]! += itemFactors[i * dimension + f]!;
  return factorizedScorer({ userFactors, itemFactors, dimension });
}

/** The same scores without the factors: forces the generic scoreAll path. */
export function opaque(scorer: Scorer): Scorer {
  return {
    numUsers: scorer.numUsers,
    numItems: scorer.numItems,
    scoreAll: (u, o) => scorer.scoreAll(u, o),
    score: (u, i) => scorer.score(u, i),
  };
}

/** A data set keeping every `step`-th user (all items), for brute-force comparisons on big data. */
export function sampleUsers(dataset: Dataset, step: number): Dataset {
  const keep: number[] = [];
  for (let u = 0; u < dataset.numUsers; u += step) keep.push(u);
  const pick = (matrix: InteractionMatrix): InteractionMatrix => {
    const users: number[] = [];
    const items: number[] = [];
    keep.forEach((u, k) => {
      for (const i of matrix.row(u)) {
        users.push(k);
        items.push(i);
      }
    });
    return InteractionMatrix.fromPairs(keep.length, dataset.numItems, users, items);
  };
  return {
    ...dataset,
    name: `${dataset.name} (every ${step}th user)`,
    userIdMap: IdMap.inOrder(keep.map((u) => dataset.userIdMap.toSource(u))),
    numUsers: keep.length,
    train: pick(dataset.train),
    validation: dataset.validation ? pick(dataset.validation) : null,
    test: pick(dataset.test),
  };
}

/** A hand-made data set: `train[u]` and `test[u]` list user u's items (dense ids). */
export function handDataset(
  name: string,
  numItems: number,
  train: number[][],
  test: number[][],
): Dataset {
  const matrix = (rows: number[][]): InteractionMatrix => {
    const users: number[] = [];
    const items: number[] = [];
    rows.forEach((row, u) => {
      for (const i of row) {
        users.push(u);
        items.push(i);
      }
    });
    return InteractionMatrix.fromPairs(test.length, numItems, users, items);
  };
  return {
    name,
    userIdMap: IdMap.inOrder(test.map((_, u) => `u${u}`)),
    itemIdMap: IdMap.inOrder(Array.from({ length: numItems }, (_, i) => `i${i}`)),
    numUsers: test.length,
    numItems,
    train: matrix(train),
    validation: null,
    test: matrix(test),
    coldStartItems: new Int32Array(0),
    protocol: {
      kind: 'given',
      order: 'given',
      seed: 0,
      coldStartItems: 'keep',
      droppedColdStartInteractions: 0,
      mergedDuplicates: 0,
      droppedTrainTestOverlap: 0,
      validation: null,
    },
  };
}
