import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Random, generateCycleSequences } from '@advrec/data';
import { SEQUENCE_ITEM_TABLE } from '@advrec/models';
import type { SequencePass, SequencePassGradients, Tfjs } from '@advrec/models';
import { createGemm, jsGemm } from '@advrec/onnx';
import {
  chooseSequenceKernel,
  evaluateSequential,
  sequenceCandidates,
  tfjsPassGradients,
  trainSequentialModel,
} from '@advrec/trainer';
import { KERNEL_CHUNK_SEQUENCES } from '@advrec/models';
import { GRU4Rec, GRU4RecGradientKernel } from './index.js';

const valuesOf = (model: GRU4Rec) => new Map(model.tables.map((t) => [t.name, t.values]));

await tf.setBackend('cpu');
const tfjs = tf as unknown as Tfjs;

/** A pass over `rows` left-padded sequences of the given real lengths, with random item rows. */
function randomPass(
  model: GRU4Rec,
  lengths: readonly number[],
  length: number,
  seed: number,
  training = false,
): SequencePass {
  const d = model.dimension;
  const random = new Random(seed);
  const size = lengths.length;
  const n = size * length;
  const inputMask = new Float32Array(n);
  const targetMask = new Float32Array(n);
  lengths.forEach((real, b) => {
    for (let l = length - real; l < length; l++) {
      inputMask[b * length + l] = 1;
      targetMask[b * length + l] = 1;
    }
  });
  const rows = (mask: Float32Array) =>
    Float32Array.from({ length: n * d }, (_, k) =>
      mask[Math.floor(k / d)] ? random.nextGaussian() * 0.5 : 0,
    );
  return {
    size,
    length,
    positionOffset: model.maxLength - length,
    inputRows: rows(inputMask),
    positiveRows: rows(targetMask),
    negativeRows: rows(targetMask),
    inputMask,
    targetMask,
    targets: lengths.reduce((a, b) => a + b, 0),
    training,
    seed: 11,
  };
}

/** Largest |a - b| relative to the largest |b| (1e-12 floor). */
function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 1e-3; // an absolute floor: the key bias's true gradient is 0 (softmax is shift-invariant)
  for (let k = 0; k < b.length; k++) {
    diff = Math.max(diff, Math.abs(a[k]! - b[k]!));
    scale = Math.max(scale, Math.abs(b[k]!));
  }
  return diff / scale;
}

function expectSameGradients(got: SequencePassGradients, want: SequencePassGradients): void {
  expect(got.loss).toBeCloseTo(want.loss, 5);
  expect(relativeError(got.inputRows, want.inputRows)).toBeLessThan(1e-4);
  expect(relativeError(got.positiveRows, want.positiveRows)).toBeLessThan(1e-4);
  expect(relativeError(got.negativeRows, want.negativeRows)).toBeLessThan(1e-4);
  expect([...got.dense.keys()].sort()).toEqual([...want.dense.keys()].sort());
  for (const [name, g] of want.dense) {
    const mine = got.dense.get(name)!;
    expect(mine.length, name).toBe(g.length);
    expect(relativeError(mine, g), name).toBeLessThan(1e-4);
  }
}

describe('GRU4Rec gradient kernel (tfjs autodiff is the oracle)', () => {
  // Perturb the zero biases and unit gains so their gradients are exercised off the identity.
  function trainedLikeModel(config: ConstructorParameters<typeof GRU4Rec>[1]): GRU4Rec {
    const model = new GRU4Rec(40, config);
    const random = new Random(5);
    for (const table of model.tables)
      if (table.name !== SEQUENCE_ITEM_TABLE && !table.name.endsWith('.weights'))
        for (let k = 0; k < table.values.length; k++)
          table.values[k] = table.values[k]! + 0.2 * random.nextGaussian();
    return model;
  }

  it('gives the loss and every gradient of tfjs autodiff, padding and short batches included', async () => {
    const model = trainedLikeModel({
      dimension: 8,
      maxLength: 7,
      hiddenSize: 6,
      dropout: 0.3,
      seed: 4,
    });
    const kernel = new GRU4RecGradientKernel(valuesOf(model), model.resolved, jsGemm);
    for (const [lengths, length] of [
      [[5, 2, 1, 5], 5],
      [[7, 3, 6], 7],
      [[1], 1],
    ] as const) {
      const pass = randomPass(model, lengths, length, length * 31);
      expectSameGradients(
        await kernel.lossAndGradients(pass),
        tfjsPassGradients(tfjs, model, pass),
      );
    }
  });

  it('agrees on onnxruntime products as on plain JS, with a wider hidden state', async () => {
    const model = trainedLikeModel({ dimension: 24, maxLength: 12, hiddenSize: 20, seed: 8 });
    const gemm = await createGemm({ threads: 1 });
    try {
      const pass = randomPass(model, [12, 9, 4, 1, 12, 7], 12, 3);
      const want = tfjsPassGradients(tfjs, model, pass);
      expectSameGradients(
        await new GRU4RecGradientKernel(valuesOf(model), model.resolved, gemm).lossAndGradients(
          pass,
        ),
        want,
      );
    } finally {
      await gemm.release();
    }
  });

  it('applies dropout from the pass seed: same seed same result, another seed another, mean loss near the clean one', async () => {
    const model = trainedLikeModel({
      dimension: 8,
      maxLength: 6,
      hiddenSize: 6,
      dropout: 0.5,
      seed: 2,
    });
    const kernel = new GRU4RecGradientKernel(valuesOf(model), model.resolved, jsGemm);
    const pass = randomPass(model, [6, 4, 6, 2], 6, 9, true);
    const a = await kernel.lossAndGradients(pass);
    const b = await kernel.lossAndGradients(pass);
    const c = await kernel.lossAndGradients({ ...pass, seed: 12 });
    const clean = await kernel.lossAndGradients({ ...pass, training: false });
    expect(a.loss).toBe(b.loss);
    expect(Array.from(a.inputRows)).toEqual(Array.from(b.inputRows));
    expect(c.loss).not.toBe(a.loss);
    expect(a.loss).not.toBe(clean.loss);
    // Padded rows receive no gradient, dropout or not.
    for (let k = 0; k < 2 * 8; k++) expect(a.inputRows[3 * 6 * 8 + k]).toBe(0);
  });

  it('cut into chunks of sequences, on 1 thread or 2 worker threads, gives the oracle gradients of the whole pass', async () => {
    const model = trainedLikeModel({ dimension: 8, maxLength: 9, hiddenSize: 6, seed: 6 });
    const lengths = Array.from(
      { length: KERNEL_CHUNK_SEQUENCES + 37 },
      (_, k) => 1 + ((k * 7) % 9),
    );
    const pass = randomPass(model, lengths, 9, 17);
    const want = tfjsPassGradients(tfjs, model, pass);
    const gemm = await createGemm({ threads: 1 });
    try {
      for (const threads of [1, 2]) {
        const kernel = model.createGradientKernel({ gemm, threads });
        const got = await kernel.lossAndGradients(randomPass(model, lengths, 9, 17));
        await kernel.release();
        expectSameGradients(got, want);
      }
      // With dropout the chunks draw their own masks: still one result on any thread count.
      const training = randomPass(model, lengths, 9, 17, true);
      const results = [];
      for (const threads of [1, 2]) {
        const kernel = model.createGradientKernel({ gemm, threads });
        results.push(
          await kernel.lossAndGradients({
            ...training,
            inputRows: Float32Array.from(training.inputRows),
            positiveRows: Float32Array.from(training.positiveRows),
            negativeRows: Float32Array.from(training.negativeRows),
          }),
        );
        await kernel.release();
      }
      expect(results[1]!.loss).toBe(results[0]!.loss);
      expect(Array.from(results[1]!.dense.get('gruRecurrentWeights')!)).toEqual(
        Array.from(results[0]!.dense.get('gruRecurrentWeights')!),
      );
    } finally {
      await gemm.release();
    }
  });

  it('trains to the same quality as tfjs autodiff, and identically on 1 and 2 onnxruntime threads', async () => {
    const split = generateCycleSequences({ numUsers: 120, numItems: 30, seed: 2 });
    const test = sequenceCandidates(split, 'test', { negatives: 20, seed: 1 });
    const train = async (engine: 'tfjs' | 'model-kernel', threads?: number) => {
      const model = new GRU4Rec(30, {
        dimension: 16,
        maxLength: 5,
        hiddenSize: 20,
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
      return { model, result, quality: evaluateSequential(tfjs, model, test).hitRate };
    };
    const reference = await train('tfjs');
    const one = await train('model-kernel', 1);
    const two = await train('model-kernel', 2);
    expect(reference.result.engine.name).toBe('tfjs');
    expect(one.result.engine.name).toBe('model-kernel');
    expect(one.result.engine.description).toMatch(/gru4rec-fused/);
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
    const model = new GRU4Rec(10, { dimension: 4, maxLength: 3, hiddenSize: 20, seed: 1 });
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
    } as unknown as GRU4Rec;
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
