import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { ConfigError, InteractionMatrix } from '@advrec/data';
import { describeModelContract } from './contract.js';
import { ItemPop, MatrixFactorization, getModelFactory, listModels } from './index.js';

await tf.setBackend('cpu');

describeModelContract({
  name: 'MF',
  create: () =>
    new MatrixFactorization(
      { numUsers: 23, numItems: 31 },
      { embeddingSize: 8, initStd: 0.5, seed: 4 },
    ),
  tf,
});

const train = InteractionMatrix.fromPairs(
  5,
  7,
  Int32Array.of(0, 0, 1, 2, 3, 4, 4),
  Int32Array.of(1, 2, 2, 2, 6, 2, 6),
);
describeModelContract({ name: 'ItemPop', create: () => new ItemPop(train), tf });

describe('MF', () => {
  it('scores p_u . q_i with the seeded truncated-normal initialisation', () => {
    const a = new MatrixFactorization({ numUsers: 4, numItems: 5 }, { embeddingSize: 3, seed: 9 });
    const b = new MatrixFactorization({ numUsers: 4, numItems: 5 }, { embeddingSize: 3, seed: 9 });
    expect(a.userEmbeddings.values).toEqual(b.userEmbeddings.values);
    expect(a.config).toEqual({ embeddingSize: 3, initStd: 0.01, seed: 9 });
    for (const v of a.itemEmbeddings.values) expect(Math.abs(v)).toBeLessThanOrEqual(0.02);
    const p = a.userEmbeddings.values;
    const q = a.itemEmbeddings.values;
    const expected = p[3]! * q[6]! + p[4]! * q[7]! + p[5]! * q[8]!;
    expect(a.score(Int32Array.of(1), Int32Array.of(2))[0]).toBeCloseTo(expected, 15);
    expect(a.tables[0]!.values.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('reports every bad config field at once', () => {
    let error: unknown;
    try {
      new MatrixFactorization(
        { numUsers: 0, numItems: 3 },
        { embeddingSize: 0, initStd: -1, seed: 1.5 },
      );
    } catch (e) {
      error = e;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual([
      'embeddingSize',
      'initStd',
      'seed',
    ]);
  });
});

describe('ItemPop', () => {
  it('ranks by training popularity for every user', () => {
    const model = new ItemPop(train);
    expect(Array.from(model.scoreAll(Int32Array.of(3)))).toEqual([0, 1, 4, 0, 0, 0, 2]);
    expect(model.surfaces).toEqual([]);
  });
});

describe('registry', () => {
  it('lists the built-in models and names them in unknown-model errors', () => {
    expect(listModels().map((m) => m.modelName)).toEqual(
      expect.arrayContaining(['mf', 'item-pop']),
    );
    expect(() => getModelFactory('bpr-mf')).toThrow(
      /unknown model "bpr-mf"; registered: item-pop, mf/,
    );
  });
});
