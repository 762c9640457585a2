import { describe, expect, it } from 'vitest';
import { Random } from '@advrec/data';
import { MatrixFactorization } from '@advrec/models';
import { loadTfjs } from './backend.js';
import { createMfKernel } from './mf-kernel.js';
import { createKernelBuffers, kernelParams, syncKernelMemory } from './mf-engine.js';
import type { MfEngineOptions } from './mf-engine.js';
import { createOptimizerState, resolveOptimizerConfig } from './optimizer.js';
import type { OptimizerConfig } from './optimizer.js';
import { referenceAdagrad, referenceMfStep } from './test-support/reference.js';
import type { RowGradients } from './test-support/reference.js';

const { tf } = await loadTfjs('cpu');

const USERS = 30;
const ITEMS = 45;
const K = 6; // not a multiple of 4: rows are padded in the kernel memory
const SIZE = 96;

function setup(optimizer: OptimizerConfig, extra: Partial<MfEngineOptions> = {}, seed = 7) {
  const model = new MatrixFactorization(
    { numUsers: USERS, numItems: ITEMS },
    { embeddingSize: K, initStd: 0.4, seed },
  );
  const resolved = resolveOptimizerConfig(optimizer, []);
  const options: MfEngineOptions = {
    threads: 1,
    mode: 'deterministic',
    optimizer: resolved,
    userState: createOptimizerState(resolved, model.userEmbeddings),
    itemState: createOptimizerState(resolved, model.itemEmbeddings),
    l2: 0.01,
    epsilon: 0.5,
    adversarialWeight: 1.5,
    adversary: 'fgm',
    perturbUsers: true,
    perturbItems: true,
    seed: 3,
    ...extra,
  };
  const buffers = createKernelBuffers(model, options, SIZE, 1, false);
  const memory = new Float32Array(buffers.memory.buffer);
  const delta = (side: 'user' | 'item', slot: number): Float32Array => {
    const at =
      (side === 'user'
        ? buffers.layout.scratch[0]!.userDelta
        : buffers.layout.scratch[0]!.itemDelta) / 4;
    return memory.subarray(
      at + slot * buffers.layout.stride,
      at + slot * buffers.layout.stride + K,
    );
  };
  const random = new Random(seed + 100);
  // Duplicated users and items, and items that are a positive in one triple and a negative in another.
  for (let t = 0; t < SIZE; t++) {
    buffers.ringUsers[t] = random.nextInt(USERS);
    buffers.ringPositives[t] = random.nextInt(ITEMS);
    let j = random.nextInt(ITEMS);
    while (j === buffers.ringPositives[t]) j = random.nextInt(ITEMS);
    buffers.ringNegatives[t] = j;
  }
  const batch = {
    users: buffers.ringUsers.slice(0, SIZE),
    positives: buffers.ringPositives.slice(0, SIZE),
    negatives: buffers.ringNegatives.slice(0, SIZE),
  };
  const run = (adversarial: boolean): void => {
    buffers.slotMeta.set([1, SIZE, 0, 0, adversarial ? 1 : 0, 1]);
    syncKernelMemory(buffers, model, options.userState, options.itemState, true);
    createMfKernel(buffers, kernelParams(options)).runBatch(0, 1);
    syncKernelMemory(buffers, model, options.userState, options.itemState, false);
  };
  return { model, options, buffers, batch, run, delta };
}

function gradientsFromSgd(
  before: Float32Array,
  after: Float32Array,
  rows: Iterable<number>,
): RowGradients {
  const out: RowGradients = new Map();
  for (const r of rows) {
    const g = new Float64Array(K);
    for (let f = 0; f < K; f++) g[f] = before[r * K + f]! - after[r * K + f]!;
    out.set(r, g);
  }
  return out;
}

function maxDiff(a: RowGradients, b: RowGradients): number {
  expect([...a.keys()].sort((x, y) => x - y)).toEqual([...b.keys()].sort((x, y) => x - y));
  let m = 0;
  for (const [r, g] of a)
    for (let f = 0; f < K; f++) m = Math.max(m, Math.abs(g[f]! - b.get(r)![f]!));
  return m;
}

describe('fused MF kernel vs tfjs autodiff', () => {
  for (const adversarial of [false, true]) {
    it(`${adversarial ? 'APR' : 'BPR'} step: loss and every row gradient within 1e-5`, () => {
      const s = setup({ name: 'sgd', learningRate: 1 });
      const P0 = s.model.userEmbeddings.values.slice();
      const Q0 = s.model.itemEmbeddings.values.slice();
      const ref = referenceMfStep(tf, P0, Q0, K, s.batch, {
        l2: 0.01,
        adversarial: adversarial ? { epsilon: 0.5, adversarialWeight: 1.5 } : undefined,
      });
      s.run(adversarial);
      // Per-triple losses: the kernel keeps the margins.
      for (let t = 0; t < SIZE; t++) {
        expect(
          Math.abs(Math.log1p(Math.exp(-s.buffers.tripleLoss[t]!)) - ref.tripleLoss[t]!),
        ).toBeLessThanOrEqual(1e-5);
        if (adversarial)
          expect(
            Math.abs(
              Math.log1p(Math.exp(-s.buffers.tripleAdversarialLoss[t]!)) -
                ref.tripleAdversarialLoss[t]!,
            ),
          ).toBeLessThanOrEqual(1e-5);
      }
      const refLoss = ref.tripleLoss.reduce((a, b) => a + b, 0);
      expect(Math.abs(s.buffers.stats[0]! - refLoss) / refLoss).toBeLessThan(1e-6);
      if (adversarial) {
        const refAdv = 1.5 * ref.tripleAdversarialLoss.reduce((a, b) => a + b, 0);
        expect(Math.abs(s.buffers.stats[1]! - refAdv) / refAdv).toBeLessThan(1e-6);
      }
      const gu = gradientsFromSgd(P0, s.model.userEmbeddings.values, ref.userGradients.keys());
      const gi = gradientsFromSgd(Q0, s.model.itemEmbeddings.values, ref.itemGradients.keys());
      expect(maxDiff(gu, ref.userGradients)).toBeLessThanOrEqual(1e-5);
      expect(maxDiff(gi, ref.itemGradients)).toBeLessThanOrEqual(1e-5);
      // Untouched rows do not move.
      for (let u = 0; u < USERS; u++)
        if (!ref.userGradients.has(u))
          expect(s.model.userEmbeddings.values.subarray(u * K, u * K + K)).toEqual(
            P0.subarray(u * K, u * K + K),
          );
    });
  }

  it('FGM perturbations have norm epsilon per row and match the reference', () => {
    const s = setup({ name: 'sgd', learningRate: 1 });
    const ref = referenceMfStep(
      tf,
      s.model.userEmbeddings.values.slice(),
      s.model.itemEmbeddings.values.slice(),
      K,
      s.batch,
      {
        l2: 0.01,
        adversarial: { epsilon: 0.5, adversarialWeight: 1.5 },
      },
    );
    s.run(true);
    // The kernel's slot order is first appearance in the batch.
    const firstUsers = [...new Set(s.batch.users)];
    firstUsers.forEach((u, slot) => {
      const d = s.delta('user', slot);
      expect(Math.hypot(...d)).toBeCloseTo(0.5, 6);
      for (let f = 0; f < K; f++)
        expect(Math.abs(d[f]! - ref.userDeltas.get(u)![f]!)).toBeLessThan(1e-5);
    });
    const firstItems: number[] = [];
    for (let t = 0; t < SIZE; t++) firstItems.push(s.batch.positives[t]!, s.batch.negatives[t]!);
    [...new Set(firstItems)].forEach((i, slot) => {
      const d = s.delta('item', slot);
      expect(Math.hypot(...d)).toBeCloseTo(0.5, 6);
      for (let f = 0; f < K; f++)
        expect(Math.abs(d[f]! - ref.itemDeltas.get(i)![f]!)).toBeLessThan(1e-5);
    });
  });

  for (const adversarial of [false, true]) {
    it(`after one Adagrad ${adversarial ? 'APR' : 'BPR'} step the tables match a tfjs reference step`, () => {
      const s = setup({ name: 'adagrad', learningRate: 0.05, initialAccumulator: 0.1 });
      const P0 = s.model.userEmbeddings.values.slice();
      const Q0 = s.model.itemEmbeddings.values.slice();
      const ref = referenceMfStep(tf, P0, Q0, K, s.batch, {
        l2: 0.01,
        adversarial: adversarial ? { epsilon: 0.5, adversarialWeight: 1.5 } : undefined,
      });
      const refP = referenceAdagrad(
        tf,
        P0,
        new Float32Array(P0.length).fill(0.1),
        K,
        ref.userGradients,
        0.05,
      );
      const refQ = referenceAdagrad(
        tf,
        Q0,
        new Float32Array(Q0.length).fill(0.1),
        K,
        ref.itemGradients,
        0.05,
      );
      s.run(adversarial);
      const diff = (a: Float32Array, b: Float32Array): number =>
        a.reduce((m, v, k) => Math.max(m, Math.abs(v - b[k]!)), 0);
      expect(diff(s.model.userEmbeddings.values, refP.table)).toBeLessThanOrEqual(1e-5);
      expect(diff(s.model.itemEmbeddings.values, refQ.table)).toBeLessThanOrEqual(1e-5);
      expect(diff(s.options.userState.state1!.values, refP.accumulator)).toBeLessThanOrEqual(1e-5);
      expect(diff(s.options.itemState.state1!.values, refQ.accumulator)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('FGSM moves every coordinate by epsilon and random noise has norm epsilon', () => {
    for (const adversary of ['fgsm', 'random'] as const) {
      const s = setup({ name: 'sgd', learningRate: 1 }, { adversary });
      s.run(true);
      const users = new Set(s.batch.users).size;
      for (let slot = 0; slot < users; slot++) {
        const d = s.delta('user', slot);
        if (adversary === 'fgsm') for (const v of d) expect(Math.abs(v)).toBe(0.5);
        else expect(Math.hypot(...d)).toBeCloseTo(0.5, 6);
      }
    }
  });

  it('perturbing only the item embeddings leaves user deltas at zero', () => {
    const s = setup({ name: 'sgd', learningRate: 1 }, { perturbUsers: false });
    s.run(true);
    const users = new Set(s.batch.users).size;
    for (let slot = 0; slot < users; slot++)
      expect(s.delta('user', slot).every((v) => v === 0)).toBe(true);
    expect(s.delta('item', 0).some((v) => v !== 0)).toBe(true);
  });
});
