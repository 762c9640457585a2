import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { describeSequentialModelContract } from '@advrec/models/contract';
import { ConfigError, generateCycleSequences } from '@advrec/data';
import { evaluateSequential, sequenceCandidates, trainSequentialModel } from '@advrec/trainer';
import { getSequentialModelFactory } from '@advrec/models';
import type { Tfjs } from '@advrec/models';
import { SEQUENCE_MEAN_MODEL_NAME, SequenceMean, resolveSequenceMeanConfig } from './index.js';

await tf.setBackend('cpu');
const tfjs = tf as unknown as Tfjs;

describeSequentialModelContract({
  name: 'SequenceMean',
  tf: tfjs,
  create: () => new SequenceMean(11, { dimension: 6, maxLength: 5, seed: 4 }),
});

describe('the example sequential plugin', () => {
  it('registers itself when imported and names every bad option', () => {
    expect(getSequentialModelFactory(SEQUENCE_MEAN_MODEL_NAME).modelName).toBe('sequence-mean');
    try {
      resolveSequenceMeanConfig({ dimension: 0, dropout: 1 } as never);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((i) => i.path)).toEqual(
        expect.arrayContaining(['dimension', 'dropout']),
      );
    }
  });

  it('the hidden state is the running mean of the real items through the dense layer', () => {
    const model = new SequenceMean(5, { dimension: 2, maxLength: 3, dropout: 0, seed: 1 });
    const [items, weights, bias] = model.tables;
    items!.values.set([1, 0, 0, 1, 2, 2, 4, 0, 0, 4]);
    weights!.values.set([1, 0, 0, 1]);
    bias!.values.set([0.5, -0.5]);
    // One sequence: padding, item 1, item 3.
    const itemRows = tf.tensor3d([
      [
        [0, 0],
        [0, 1],
        [4, 0],
      ],
    ]);
    const mask = tf.tensor3d([[[0], [1], [1]]]);
    const out = model.encode(tfjs, {
      size: 1,
      length: 3,
      positionOffset: 0,
      itemRows,
      mask,
      dense: {
        meanWeights: tf.tensor2d(Array.from(weights!.values), [2, 2]),
        meanBias: tf.tensor2d(Array.from(bias!.values), [1, 2]),
      },
      training: false,
      dropout: (x) => x,
    });
    const values = Array.from(out.dataSync());
    // Positions 1 and 2: mean (0, 1) and mean ((0, 1), (4, 0)) = (2, 0.5), plus the bias.
    expect(values.slice(2)).toEqual([0.5, 0.5, 2.5, 0]);
  });

  it('trains through @advrec/trainer with no change to the core: beats its untrained self', async () => {
    const split = generateCycleSequences({ numUsers: 120, numItems: 30, seed: 5 });
    const test = sequenceCandidates(split, 'test', { negatives: 20, seed: 1 });
    const model = new SequenceMean(30, { dimension: 16, maxLength: 4, dropout: 0, seed: 2 });
    const before = (await evaluateSequential(tfjs, model, test)).metrics;
    await trainSequentialModel(tfjs, model, split, {
      epochs: 30,
      batchSize: 32,
      adam: { learningRate: 0.01 },
      seed: 3,
    });
    const after = (await evaluateSequential(tfjs, model, test)).metrics;
    expect(after['ndcg@10']!).toBeGreaterThan(before['ndcg@10']! + 0.2);
  });
});
