import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@advrec/data';
import { createModel } from '@advrec/models';
import { describeModelContract } from '@advrec/models/contract';
import { InteractionMatrix } from '@advrec/data';
import { NeuralMatrixFactorization, mlpWeights, resolveNeuMFConfig } from './index.js';

const dimensions = { numUsers: 13, numItems: 17 };

describeModelContract({
  name: 'NeuMF (K = 4, MLP 16 -> 8 -> 4)',
  create: () =>
    new NeuralMatrixFactorization(dimensions, { embeddingSize: 4, seed: 3, initStd: 0.3 }),
  tf,
});
describeModelContract({
  name: 'NeuMF (K = 3, one MLP layer, MLP embeddings of 5)',
  create: () =>
    new NeuralMatrixFactorization(dimensions, {
      embeddingSize: 3,
      mlpLayers: [3],
      mlpEmbeddingSize: 5,
      seed: 4,
      initStd: 0.5,
    }),
  tf,
});

describe('NeuMF configuration', () => {
  it("defaults to the NCF paper's tower for K predictive factors: [4K, 2K, K] over MLP embeddings of 4K", () => {
    expect(resolveNeuMFConfig({ embeddingSize: 8 })).toEqual({
      embeddingSize: 8,
      mlpLayers: [32, 16, 8],
      mlpEmbeddingSize: 32,
      initStd: 0.01,
      seed: 0,
    });
    const model = new NeuralMatrixFactorization(dimensions, { embeddingSize: 8 });
    expect(model.tables.find((t) => t.name === mlpWeights(1))).toMatchObject({
      rows: 64,
      dimension: 32,
    });
    expect(model.surfaces.map((s) => s.name)).toEqual([
      'gmfUserEmbeddings',
      'gmfItemEmbeddings',
      'mlpUserEmbeddings',
      'mlpItemEmbeddings',
    ]);
  });

  it('reports every bad option at once, with its name', () => {
    let error: unknown;
    try {
      resolveNeuMFConfig({ embeddingSize: 0, mlpLayers: [8, 3], initStd: -1, typo: 1 } as never);
    } catch (e) {
      error = e;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    const paths = (error as ConfigError).issues.map((i) => i.path);
    expect(paths).toEqual(['typo', 'embeddingSize', 'mlpLayers', 'initStd']);
  });

  it('is registered as "neumf" when the package is imported, seeded from the run', () => {
    const train = InteractionMatrix.fromPairs(2, 3, Int32Array.of(0, 1), Int32Array.of(1, 2));
    const a = createModel(
      'neumf',
      { numUsers: 2, numItems: 3, train, seed: 5 },
      { embeddingSize: 2 },
    );
    const b = createModel(
      'neumf',
      { numUsers: 2, numItems: 3, train, seed: 5 },
      { embeddingSize: 2 },
    );
    expect(a.modelName).toBe('neumf');
    expect(a.scoreAll(Int32Array.of(0, 1))).toEqual(b.scoreAll(Int32Array.of(0, 1)));
  });
});
