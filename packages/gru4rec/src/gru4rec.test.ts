import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { describeSequentialModelContract } from '@advrec/models/contract';
import { ConfigError, generateCycleSequences } from '@advrec/data';
import { evaluateSequential, sequenceCandidates, trainSequentialModel } from '@advrec/trainer';
import { getSequentialModelFactory } from '@advrec/models';
import type { Tfjs } from '@advrec/models';
import { GRU4Rec, GRU4REC_MODEL_NAME, resolveGRU4RecConfig } from './index.js';

await tf.setBackend('cpu');

describeSequentialModelContract({
  name: 'GRU4Rec',
  tf: tf as unknown as Tfjs,
  create: () => new GRU4Rec(13, { dimension: 8, hiddenSize: 6, maxLength: 6, seed: 3 }),
});

describe('GRU4Rec', () => {
  it("registers itself and applies RecBole's defaults", () => {
    expect(getSequentialModelFactory(GRU4REC_MODEL_NAME).modelName).toBe('gru4rec');
    expect(resolveGRU4RecConfig()).toEqual({
      dimension: 64,
      hiddenSize: 64,
      maxLength: 50,
      dropout: 0.3,
      seed: 0,
    });
  });

  it('names every bad option', () => {
    try {
      resolveGRU4RecConfig({ dimension: 0, dropout: 1, hiddenSize: 1.5 });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const paths = (error as ConfigError).issues.map((i) => i.path);
      expect(paths).toEqual(expect.arrayContaining(['dimension', 'dropout', 'hiddenSize']));
    }
  });

  it('initialises deterministically from its seed, differently for another seed', () => {
    const a = new GRU4Rec(20, { dimension: 4, maxLength: 3, seed: 1 });
    const b = new GRU4Rec(20, { dimension: 4, maxLength: 3, seed: 1 });
    const c = new GRU4Rec(20, { dimension: 4, maxLength: 3, seed: 2 });
    expect(Array.from(a.tables[0]!.values)).toEqual(Array.from(b.tables[0]!.values));
    expect(Array.from(a.tables[0]!.values)).not.toEqual(Array.from(c.tables[0]!.values));
  });

  it('trains through @advrec/trainer with no change to the core: learns a planted next-item rule', async () => {
    const split = generateCycleSequences({ numUsers: 100, numItems: 30, seed: 2 });
    const test = sequenceCandidates(split, 'test', { negatives: 20, seed: 1 });
    const model = new GRU4Rec(30, {
      dimension: 16,
      hiddenSize: 16,
      maxLength: 5,
      dropout: 0.1,
      seed: 1,
    });
    const before = (await evaluateSequential(tf as unknown as Tfjs, model, test)).metrics;
    await trainSequentialModel(tf as unknown as Tfjs, model, split, {
      epochs: 15,
      batchSize: 32,
      seed: 3,
      adam: { learningRate: 0.01 },
      adversarial: { epsilon: 0.05, adversarialWeight: 1 },
    });
    const after = (await evaluateSequential(tf as unknown as Tfjs, model, test)).metrics;
    expect(after['ndcg@10']!).toBeGreaterThan(Math.max(0.8, before['ndcg@10']! + 0.3));
  });
});
