/**
 * The contract suite of a sequential model's hand-written kernel (for plugin authors; SASRec
 * and GRU4Rec run it): the tfjs autodiff of the model's own encoder is the oracle.
 *
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import { describeSequenceKernelContract } from '@advrec/models/contract';
 * describeSequenceKernelContract({ name: 'MyModel', tf, create, passKernel });
 * ```
 */
import { describe, expect, it } from 'vitest';
import { Random } from '@advrec/data';
import { createGemm, jsGemm } from '@advrec/onnx';
import type { Gemm } from '@advrec/onnx';
import type { Tfjs } from './model.js';
import { KERNEL_CHUNK_SEQUENCES } from './sequence-kernel.js';
import { SEQUENCE_ITEM_TABLE, tfjsPassGradients } from './sequential.js';
import type {
  SequenceGradientKernel,
  SequencePass,
  SequencePassGradients,
  SequentialModel,
} from './sequential.js';

/** Options of {@link describeSequenceKernelContract}. */
export interface SequenceKernelContractOptions {
  readonly name: string;
  /** tfjs with gradients registered (e.g. `@tensorflow/tfjs` on its cpu backend). */
  readonly tf: Tfjs;
  /**
   * A fresh model over 40 items with the given dropout: `small` with `maxLength` 9 (and two
   * layers where the model has layers), `wide` with `maxLength` 12 and wider rows.
   */
  create(variant: 'small' | 'wide', dropout: number): SequentialModel;
  /** The model's single-thread kernel on `gemm` (its kernel module's `createPassKernel`). */
  passKernel(model: SequentialModel, gemm: Gemm): SequenceGradientKernel;
}

/** A pass over left-padded sequences of the given real lengths, with random item rows. */
function randomPass(
  model: SequentialModel,
  lengths: readonly number[],
  length: number,
  seed: number,
  training = false,
): SequencePass {
  const d = model.dimension;
  const random = new Random(seed);
  const n = lengths.length * length;
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
    size: lengths.length,
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

/**
 * Largest |a - b| relative to the largest |b|, with an absolute floor of 1e-3 (a gradient
 * that is 0 in exact arithmetic, such as an attention key bias's, is float noise on both sides).
 */
function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 1e-3;
  for (let k = 0; k < b.length; k++) {
    diff = Math.max(diff, Math.abs(a[k]! - b[k]!));
    scale = Math.max(scale, Math.abs(b[k]!));
  }
  return diff / scale;
}

function expectSameGradients(got: SequencePassGradients, want: SequencePassGradients): void {
  expect(got.loss).toBeCloseTo(want.loss, 5);
  for (const part of ['inputRows', 'positiveRows', 'negativeRows'] as const)
    expect(relativeError(got[part], want[part]), part).toBeLessThan(1e-4);
  expect([...got.dense.keys()].sort()).toEqual([...want.dense.keys()].sort());
  for (const [name, g] of want.dense) {
    const mine = got.dense.get(name)!;
    expect(mine.length, name).toBe(g.length);
    expect(relativeError(mine, g), name).toBeLessThan(1e-4);
  }
}

/** Runs the kernel contract on a model with a hand-written kernel. */
export function describeSequenceKernelContract(options: SequenceKernelContractOptions): void {
  const { tf } = options;
  /** A model whose dense tables are moved off their initial values (unit gains, zero biases). */
  const create = (variant: 'small' | 'wide', dropout: number): SequentialModel => {
    const model = options.create(variant, dropout);
    const random = new Random(5);
    for (const table of model.tables)
      if (table.name !== SEQUENCE_ITEM_TABLE)
        for (let k = 0; k < table.values.length; k++)
          table.values[k] = table.values[k]! + 0.2 * random.nextGaussian();
    return model;
  };
  const kernelOf = (model: SequentialModel, threads: number, gemm: Gemm) => {
    if (!model.createGradientKernel) throw new Error(`${options.name} has no createGradientKernel`);
    const made = model.createGradientKernel({ gemm, threads });
    if ('declined' in made) throw new Error(`${options.name} declined: ${made.declined}`);
    return made;
  };

  describe(`${options.name} gradient kernel (the contract; tfjs autodiff of its encoder is the oracle)`, () => {
    it('gives the loss and every gradient of tfjs autodiff, padding and short batches included', async () => {
      const model = create('small', 0.3);
      const kernel = options.passKernel(model, jsGemm);
      for (const [lengths, length] of [
        [[5, 2, 1, 5], 5],
        [[9, 3, 6], 9],
        [[1], 1],
      ] as const) {
        const pass = randomPass(model, lengths, length, length * 31);
        expectSameGradients(
          await kernel.lossAndGradients(pass),
          tfjsPassGradients(tf, model, pass),
        );
      }
    });

    it('agrees on onnxruntime products as on plain JS, with wider rows', async () => {
      const model = create('wide', 0);
      const gemm = await createGemm({ threads: 1 });
      try {
        const pass = randomPass(model, [12, 9, 4, 1, 12, 7], 12, 3);
        expectSameGradients(
          await options.passKernel(model, gemm).lossAndGradients(pass),
          tfjsPassGradients(tf, model, pass),
        );
      } finally {
        await gemm.release();
      }
    });

    it('draws dropout from the pass seed: same seed same result, another seed another; padding gets no gradient', async () => {
      const model = create('small', 0.5);
      const kernel = options.passKernel(model, jsGemm);
      const pass = randomPass(model, [6, 4, 6, 2], 6, 9, true);
      const a = await kernel.lossAndGradients(pass);
      const b = await kernel.lossAndGradients(pass);
      const c = await kernel.lossAndGradients({ ...pass, seed: 12 });
      const clean = await kernel.lossAndGradients({ ...pass, training: false });
      expect(a.loss).toBe(b.loss);
      expect(Array.from(a.inputRows)).toEqual(Array.from(b.inputRows));
      expect(c.loss).not.toBe(a.loss);
      expect(a.loss).not.toBe(clean.loss);
      const d = model.dimension;
      // Sequence 3 has 2 items: its first 4 positions are padding.
      for (let k = 0; k < 4 * d; k++) expect(a.inputRows[3 * 6 * d + k]).toBe(0);
    });

    it('cut into chunks of sequences, on 1 thread or 2 worker threads, gives the oracle gradients of the whole pass, and one result with dropout', async () => {
      const model = create('small', 0.3);
      const lengths = Array.from(
        { length: KERNEL_CHUNK_SEQUENCES + 37 },
        (_, k) => 1 + ((k * 7) % 9),
      );
      const want = tfjsPassGradients(tf, model, randomPass(model, lengths, 9, 17));
      const gemm = await createGemm({ threads: 1 });
      try {
        const training: SequencePassGradients[] = [];
        for (const threads of [1, 2]) {
          const kernel = kernelOf(model, threads, gemm);
          expectSameGradients(
            await kernel.lossAndGradients(randomPass(model, lengths, 9, 17)),
            want,
          );
          training.push(await kernel.lossAndGradients(randomPass(model, lengths, 9, 17, true)));
          await kernel.release();
        }
        expect(training[1]!.loss).toBe(training[0]!.loss);
        for (const [name, g] of training[0]!.dense)
          expect(Array.from(training[1]!.dense.get(name)!), name).toEqual(Array.from(g));
      } finally {
        await gemm.release();
      }
    });
  });
}
