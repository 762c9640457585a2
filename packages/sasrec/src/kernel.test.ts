import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { generateCycleSequences } from '@advrec/data';
import { describeSequenceKernelContract } from '@advrec/models/contract';
import type { Tfjs } from '@advrec/models';
import {
  chooseSequenceKernel,
  evaluateSequential,
  sequenceCandidates,
  trainSequentialModel,
} from '@advrec/trainer';
import { SASRec, SASRecGradientKernel } from './index.js';

await tf.setBackend('cpu');
const tfjs = tf as unknown as Tfjs;

describeSequenceKernelContract({
  name: 'SASRec',
  tf: tfjs,
  create: (variant, dropout) =>
    new SASRec(
      40,
      variant === 'small'
        ? { dimension: 8, maxLength: 9, blocks: 2, dropout, seed: 4 }
        : { dimension: 24, maxLength: 12, blocks: 1, dropout, seed: 8 },
    ),
  passKernel: (model, gemm) =>
    new SASRecGradientKernel(
      new Map(model.tables.map((t) => [t.name, t.values])),
      (model as SASRec).resolved,
      gemm,
    ),
});

describe('SASRec gradient kernel in training', () => {
  it('trains to the same quality as tfjs autodiff, and identically on 1 and 2 onnxruntime threads', async () => {
    const split = generateCycleSequences({ numUsers: 120, numItems: 30, seed: 2 });
    const test = sequenceCandidates(split, 'test', { negatives: 20, seed: 1 });
    const train = async (engine: 'tfjs' | 'model-kernel', threads?: number) => {
      const model = new SASRec(30, {
        dimension: 16,
        maxLength: 5,
        blocks: 1,
        dropout: 0.1,
        seed: 1,
      });
      const result = await trainSequentialModel(tfjs, model, split, {
        epochs: 12,
        batchSize: 32,
        seed: 3,
        engine,
        ...(threads ? { threads } : {}),
        adam: { learningRate: 0.01 },
        adversarial: { epsilon: 0.05, adversarialWeight: 1 },
      });
      return {
        model,
        result,
        quality: (await evaluateSequential(tfjs, model, test)).metrics['hr@10']!,
      };
    };
    const reference = await train('tfjs');
    const one = await train('model-kernel', 1);
    const two = await train('model-kernel', 2);
    expect(reference.result.engine.name).toBe('tfjs');
    expect(one.result.engine.name).toBe('model-kernel');
    expect(one.result.engine.description).toMatch(/sasrec-fused/);
    expect(two.result.engine.description).toMatch(/on 2 worker threads/);
    expect(Array.from(two.model.tables[0]!.values)).toEqual(
      Array.from(one.model.tables[0]!.values),
    );
    expect(two.result.epochs.map((e) => e.loss)).toEqual(one.result.epochs.map((e) => e.loss));
    expect(reference.quality).toBeGreaterThan(0.8);
    expect(one.quality).toBeGreaterThan(0.8);
    expect(
      Math.abs(one.result.epochs.at(-1)!.loss - reference.result.epochs.at(-1)!.loss),
    ).toBeLessThan(0.1);
  }, 60_000);

  it('is what auto picks with onnxruntime installed; tfjs when asked, with the refusal recorded for a model without a kernel', async () => {
    const model = new SASRec(10, { dimension: 4, maxLength: 3, blocks: 1, seed: 1 });
    const auto = await chooseSequenceKernel(tfjs, model);
    expect(auto.info.name).toBe('model-kernel');
    expect(auto.info.details['denseProducts']).toBe('onnxruntime');
    await auto.release();
    const forced = await chooseSequenceKernel(tfjs, model, { engine: 'tfjs' });
    expect(forced.info.name).toBe('tfjs');
    const bare = {
      ...model,
      modelName: 'bare',
      createGradientKernel: undefined,
    } as unknown as SASRec;
    const fallback = await chooseSequenceKernel(tfjs, bare);
    expect(fallback.info.name).toBe('tfjs');
    expect(fallback.info.details['declined']).toEqual([
      'model-kernel: bare brings no hand-written gradient kernel',
    ]);
    await expect(chooseSequenceKernel(tfjs, bare, { engine: 'model-kernel' })).rejects.toThrow(
      /engine.*bare brings no hand-written gradient kernel/,
    );
  });
});
