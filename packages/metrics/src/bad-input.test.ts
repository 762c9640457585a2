import {
  ConfigError,
  generateSynthetic,
  InteractionMatrix,
  leaveOneOut,
  type Dataset,
} from '@advrec/data';
import { describe, expect, it } from 'vitest';
import {
  EvaluationError,
  evaluateFullRanking,
  evaluateSampled,
  factorizedScorer,
  type Scorer,
} from './index.js';
import { opaque, randomModel } from './test-support/models.js';

const dataset = leaveOneOut(generateSynthetic({ users: 60, items: 80, seed: 4 }).log, { seed: 1 });
const model = randomModel(dataset.numUsers, dataset.numItems, 4, 5);

describe('bad input gives a clear error, never a silent NaN mean', () => {
  it('a model returning NaN names the user and item', async () => {
    const nanItem = 7;
    const broken: Scorer = {
      ...opaque(model),
      scoreAll: async (users) => {
        const out = (await model.scoreAll(users)) as Float64Array;
        for (let b = 0; b < users.length; b++) out[b * dataset.numItems + nanItem] = Number.NaN;
        return out;
      },
    };
    const error = await evaluateFullRanking(broken, dataset).catch((e: unknown) => e);
    expect(EvaluationError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(
      new RegExp(`user u\\d+ x item ${dataset.itemIdMap.toSource(nanItem)} as NaN`),
    );
  });

  it('a factorized model with a NaN factor names the row', async () => {
    const factors = model.factors();
    const userFactors = Float32Array.from(factors.userFactors);
    userFactors[4 * 3 + 1] = Number.NaN;
    expect(() => factorizedScorer({ ...factors, userFactors })).toThrow(
      /user 3 has a non-finite factor/,
    );
  });

  it('NaN scores in the sampled protocol name the user and item', async () => {
    const broken: Scorer = {
      ...opaque(model),
      score: async (users) => new Float64Array(users.length).fill(Number.NaN),
    };
    const set = {
      users: Int32Array.of(0),
      positives: Int32Array.of(dataset.test.row(0)[0]!),
      negatives: Int32Array.of(0),
      negativesPerCase: 1,
      numCases: 1,
      source: 'hand',
    };
    await expect(evaluateSampled(broken, dataset, set)).rejects.toThrow(/scores must be finite/);
  });

  it('K <= 0, an unknown metric and a bad engine are reported together with their paths', async () => {
    const error = (await evaluateFullRanking(model, dataset, {
      cutoffs: [0, 10, -1],
      metrics: ['ndcg', 'gini' as never],
      engine: 'gpu' as never,
    }).catch((e: unknown) => e)) as ConfigError;
    expect(ConfigError.isInstance(error)).toBe(true);
    expect(error.issues.map((i) => i.path)).toEqual([
      'metrics[1]',
      'cutoffs[0]',
      'cutoffs[2]',
      'engine',
    ]);
    expect(error.message).toContain('known: hr, recall, precision, ndcg, mrr, map, auc');
  });

  it('an empty test split is an error, not a mean over nobody', async () => {
    const empty: Dataset = { ...dataset, test: keepUsers(dataset, 0) };
    await expect(evaluateFullRanking(model, empty)).rejects.toThrow(/no user with a relevant item/);
    await expect(evaluateFullRanking(model, dataset, { split: 'validation' })).rejects.toThrow(
      /has no validation split/,
    );
    await expect(
      evaluateSampled(model, dataset, {
        users: new Int32Array(0),
        positives: new Int32Array(0),
        negatives: new Int32Array(0),
        negativesPerCase: 1,
        numCases: 0,
        source: 'empty',
      }),
    ).rejects.toThrow(/has no case/);
  });

  it('users without a relevant item are left out of the means and counted', async () => {
    const users = Int32Array.from({ length: dataset.numUsers }, (_, u) => u);
    const partial = { ...dataset, test: keepUsers(dataset, 10) };
    const result = await evaluateFullRanking(model, partial, { users });
    expect(result.protocol.usersEvaluated).toBe(10);
    expect(result.protocol.usersWithoutRelevantItems).toBe(dataset.numUsers - 10);
    expect(Number.isFinite(result.metrics['ndcg@10']!)).toBe(true);
  });

  it('a model of another size is refused', async () => {
    await expect(
      evaluateFullRanking(randomModel(dataset.numUsers + 1, dataset.numItems, 4, 1), dataset),
    ).rejects.toThrow(/the model scores 61 users/);
  });
});

/** The test split restricted to the first `count` users. */
function keepUsers(d: Dataset, count: number): InteractionMatrix {
  const users: number[] = [];
  const items: number[] = [];
  for (let u = 0; u < count; u++) {
    for (const i of d.test.row(u)) {
      users.push(u);
      items.push(i);
    }
  }
  return InteractionMatrix.fromPairs(d.numUsers, d.numItems, users, items);
}
