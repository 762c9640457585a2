import type * as tfc from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { InteractionMatrix, Random, TripleSampler } from '@advrec/data';
import { fgm } from '@advrec/adversary';
import type { Adversary } from '@advrec/adversary';
import { VisualBPR, vbprReferenceScore } from '@advrec/models';
import type { ParameterTable, SparseRows } from '@advrec/models';
import { jsGemm } from '@advrec/onnx';
import { loadTfjs } from './backend.js';
import { GenericEngine } from './generic-engine.js';
import { createOptimizerState, resolveOptimizerConfig } from './optimizer.js';

/** FGM, recording the last perturbation it returned per surface. */
function recordingFgm(): { adversary: Adversary; last: Map<string, SparseRows> } {
  const last = new Map<string, SparseRows>();
  const adversary: Adversary = {
    ...fgm,
    perturb(gradient, epsilon, context) {
      const delta = fgm.perturb(gradient, epsilon, context);
      last.set(context.surface.name, delta);
      return delta;
    },
  };
  return { adversary, last };
}

const { tf } = await loadTfjs('cpu');
const USERS = 12;
const ITEMS = 15;
const D = 7;
const K = 4;
const L2 = 0.01;
const EPSILON = 0.3;
const LAMBDA = 0.7;

function setup(userVisual: 'shared' | 'separate', visualBias: boolean) {
  const random = new Random(11);
  const users: number[] = [];
  const items: number[] = [];
  for (let u = 0; u < USERS; u++)
    for (let i = 0; i < ITEMS - 2; i++)
      if (random.nextFloat() < 0.3) {
        users.push(u);
        items.push(i);
      }
  const train = InteractionMatrix.fromPairs(
    USERS,
    ITEMS,
    Int32Array.from(users),
    Int32Array.from(items),
  );
  const features = {
    data: Float32Array.from({ length: ITEMS * D }, () => random.nextFloat()),
    dimension: D,
  };
  const model = new VisualBPR({ numUsers: USERS, numItems: ITEMS }, features, {
    embeddingSize: K,
    userVisual,
    visualBias,
    initStd: 0.5,
    projectionInitStd: 0.4,
    // The reference is the model's definition; item-ID dropout is a training transform.
    itemIdDropout: 0,
    seed: 3,
  });
  if (model.visualBias)
    model.visualBias.values.forEach((_, j) => (model.visualBias!.values[j] = 0.1 * Math.sin(j)));
  const sampler = new TripleSampler(train, { seed: 2, batchSize: train.nnz });
  return { model, sampler, train };
}

/** The reference step by tfjs autodiff on the gathered rows. */
function reference(
  model: VisualBPR,
  batch: { users: Int32Array; positives: Int32Array; negatives: Int32Array },
  adversarial: boolean,
) {
  const gather = (table: ParameterTable, ids: Int32Array): tfc.Tensor2D => {
    const d = table.dimension;
    const rows = new Float32Array(ids.length * d);
    ids.forEach((id, t) => rows.set(table.values.subarray(id * d, id * d + d), t * d));
    return tf.tensor2d(rows, [ids.length, d]);
  };
  const denseOf = (t: ParameterTable): tfc.Tensor2D => tf.tensor2d(t.values, [t.rows, t.dimension]);
  const P = gather(model.userEmbeddings, batch.users);
  const H = model.userVisualEmbeddings ? gather(model.userVisualEmbeddings, batch.users) : null;
  const Qi = gather(model.itemEmbeddings, batch.positives);
  const Qj = gather(model.itemEmbeddings, batch.negatives);
  const Ci = gather(model.itemFeatures, batch.positives);
  const Cj = gather(model.itemFeatures, batch.negatives);
  const E = denseOf(model.featureProjection);
  const B = model.visualBias ? denseOf(model.visualBias) : null;
  const bprSum = (
    p: tfc.Tensor2D,
    h: tfc.Tensor2D | null,
    qi: tfc.Tensor2D,
    qj: tfc.Tensor2D,
    ci: tfc.Tensor2D,
    cj: tfc.Tensor2D,
    e: tfc.Tensor2D,
    b: tfc.Tensor2D | null,
  ): tfc.Scalar => {
    const users: Record<string, tfc.Tensor2D> = h
      ? { userEmbeddings: p, userVisualEmbeddings: h }
      : { userEmbeddings: p };
    const dense: Record<string, tfc.Tensor2D> = b
      ? { featureProjection: e, visualBias: b }
      : { featureProjection: e };
    const si = vbprReferenceScore(tf, users, { itemEmbeddings: qi, itemFeatures: ci }, dense);
    const sj = vbprReferenceScore(tf, users, { itemEmbeddings: qj, itemFeatures: cj }, dense);
    return tf.sum(tf.softplus(tf.neg(tf.sub(si, sj))));
  };
  // Gamma on c: d clean / d c rows, summed per item; Delta = epsilon Gamma / ||Gamma||.
  const deltas = new Map<number, Float64Array>();
  let Di: tfc.Tensor2D | null = null;
  let Dj: tfc.Tensor2D | null = null;
  if (adversarial) {
    const [gi, gj] = tf.grads((a: tfc.Tensor, b: tfc.Tensor) =>
      bprSum(P, H, Qi, Qj, a as tfc.Tensor2D, b as tfc.Tensor2D, E, B),
    )([Ci, Cj]);
    const gamma = new Map<number, Float64Array>();
    const add = (ids: Int32Array, g: Float32Array | Int32Array | Uint8Array) =>
      ids.forEach((id, t) => {
        const row = gamma.get(id) ?? new Float64Array(D);
        for (let f = 0; f < D; f++) row[f]! += g[t * D + f]!;
        gamma.set(id, row);
      });
    add(batch.positives, gi!.dataSync());
    add(batch.negatives, gj!.dataSync());
    for (const [id, g] of gamma) {
      const n = Math.hypot(...g);
      deltas.set(
        id,
        g.map((v) => (EPSILON * v) / n),
      );
    }
    const rows = (ids: Int32Array) => {
      const r = new Float32Array(ids.length * D);
      ids.forEach((id, t) => r.set(deltas.get(id)!, t * D));
      return tf.tensor2d(r, [ids.length, D]);
    };
    Di = rows(batch.positives);
    Dj = rows(batch.negatives);
  }
  const inputs = [P, Qi, Qj, E, ...(H ? [H] : []), ...(B ? [B] : [])];
  const grads = tf.grads((...xs: tfc.Tensor[]) => {
    const [p, qi, qj, e] = xs as tfc.Tensor2D[];
    const h = H ? (xs[4] as tfc.Tensor2D) : null;
    const b = B ? (xs[H ? 5 : 4] as tfc.Tensor2D) : null;
    let loss = bprSum(p!, h, qi!, qj!, Ci, Cj, e!, b);
    const squares = [p!, qi!, qj!, e!, ...(h ? [h] : []), ...(b ? [b] : [])].map((x) =>
      tf.sum(tf.square(x)),
    );
    loss = tf.add(loss, tf.mul(L2, tf.addN(squares)));
    if (Di && Dj)
      loss = tf.add(
        loss,
        tf.mul(LAMBDA, bprSum(p!, h, qi!, qj!, tf.add(Ci, Di), tf.add(Cj, Dj), e!, b)),
      );
    return loss as tfc.Scalar;
  })(inputs);
  const scatter = (ids: Int32Array, g: tfc.Tensor, d: number, into: Map<number, Float64Array>) =>
    ids.forEach((id, t) => {
      const v = g.dataSync();
      const row = into.get(id) ?? new Float64Array(d);
      for (let f = 0; f < d; f++) row[f]! += v[t * d + f]!;
      into.set(id, row);
    });
  const gP = new Map<number, Float64Array>();
  const gQ = new Map<number, Float64Array>();
  const gH = new Map<number, Float64Array>();
  scatter(batch.users, grads[0]!, K, gP);
  scatter(batch.positives, grads[1]!, K, gQ);
  scatter(batch.negatives, grads[2]!, K, gQ);
  if (H) scatter(batch.users, grads[4]!, K, gH);
  return {
    gP,
    gQ,
    gH,
    gE: Float64Array.from(grads[3]!.dataSync()),
    gB: B ? Float64Array.from(grads[H ? 5 : 4]!.dataSync()) : null,
    deltas,
  };
}

function maxRowDiff(
  before: Float32Array,
  after: Float32Array,
  expected: Map<number, Float64Array>,
  d: number,
): number {
  let m = 0;
  for (let r = 0; r < before.length / d; r++)
    for (let f = 0; f < d; f++) {
      const g = before[r * d + f]! - after[r * d + f]!; // SGD with lr 1: the gradient
      m = Math.max(m, Math.abs(g - (expected.get(r)?.[f] ?? 0)));
    }
  return m;
}

describe('VBPR batch step without onnxruntime', () => {
  it('the plain-JS products give the same AMR epochs as onnxruntime', async () => {
    const tables: Float32Array[][] = [];
    for (const dense of ['auto', 'js'] as const) {
      const { model, sampler } = setup('separate', true);
      if (dense === 'js') model.useDenseProducts(jsGemm);
      const optimizer = resolveOptimizerConfig({}, []);
      const states = model.trainableTables.map((name) =>
        createOptimizerState(
          optimizer,
          model.tables.find((t) => t.name === name)!,
        ),
      );
      const engine = new GenericEngine(model, sampler, {
        optimizer,
        states,
        l2: L2,
        epsilon: EPSILON,
        adversarialWeight: LAMBDA,
        adversary: fgm,
        surfaces: ['itemFeatures', 'userEmbeddings'],
        seed: 1,
      });
      await engine.trainEpoch(0, false);
      await engine.trainEpoch(1, true);
      expect(model.denseProducts).toBe(dense === 'js' ? 'js' : 'onnxruntime');
      await engine.close();
      tables.push(model.tables.map((t) => t.values.slice()));
    }
    tables[0]!.forEach((values, t) =>
      values.forEach((v, k) => expect(Math.abs(v - tables[1]![t]![k]!)).toBeLessThan(1e-5)),
    );
  });
});

describe('generic engine with the VBPR batch step (VBPR / AMR) vs tfjs autodiff', () => {
  for (const [userVisual, visualBias] of [
    ['shared', false],
    ['separate', true],
  ] as const)
    for (const adversarial of [false, true]) {
      it(`${adversarial ? 'AMR' : 'VBPR'} step (${userVisual}${visualBias ? ', visual bias' : ''}): every gradient within 1e-5, Delta on c_i from d loss / d c_i`, async () => {
        const { model, sampler } = setup(userVisual, visualBias);
        const optimizer = resolveOptimizerConfig({ name: 'sgd', learningRate: 1 }, []);
        const states = model.trainableTables.map((name) =>
          createOptimizerState(
            optimizer,
            model.tables.find((t) => t.name === name)!,
          ),
        );
        const batch = sampler.batch(0, 0);
        const before = model.tables.map((t) => t.values.slice());
        const expected = reference(model, batch, adversarial);
        const recorder = recordingFgm();
        const engine = new GenericEngine(model, sampler, {
          optimizer,
          states,
          l2: L2,
          epsilon: EPSILON,
          adversarialWeight: LAMBDA,
          adversary: recorder.adversary,
          surfaces: ['itemFeatures'],
          seed: 1,
        });
        await engine.trainEpoch(0, adversarial);
        expect(model.denseProducts).toBe('onnxruntime');
        await engine.close();
        const index = (name: string) => model.tables.findIndex((t) => t.name === name);
        expect(
          maxRowDiff(before[index('userEmbeddings')]!, model.userEmbeddings.values, expected.gP, K),
        ).toBeLessThanOrEqual(1e-5);
        expect(
          maxRowDiff(before[index('itemEmbeddings')]!, model.itemEmbeddings.values, expected.gQ, K),
        ).toBeLessThanOrEqual(1e-5);
        if (model.userVisualEmbeddings)
          expect(
            maxRowDiff(
              before[index('userVisualEmbeddings')]!,
              model.userVisualEmbeddings.values,
              expected.gH,
              K,
            ),
          ).toBeLessThanOrEqual(1e-5);
        const gE = new Map(
          Array.from({ length: D }, (_, j) => [j, expected.gE.subarray(j * K, j * K + K)] as const),
        );
        expect(
          maxRowDiff(before[index('featureProjection')]!, model.featureProjection.values, gE, K),
        ).toBeLessThanOrEqual(1e-5);
        if (model.visualBias) {
          const gB = new Map(
            Array.from({ length: D }, (_, j) => [j, expected.gB!.subarray(j, j + 1)] as const),
          );
          expect(
            maxRowDiff(before[index('visualBias')]!, model.visualBias.values, gB, 1),
          ).toBeLessThanOrEqual(1e-5);
        }
        // The features themselves never change.
        expect(model.itemFeatures.values).toEqual(before[index('itemFeatures')]);
        if (adversarial) {
          const delta = recorder.last.get('itemFeatures')!;
          expect([...delta.rows].sort((a, b) => a - b)).toEqual(
            [...expected.deltas.keys()].sort((a, b) => a - b),
          );
          delta.rows.forEach((item, s) => {
            const row = delta.values.subarray(s * D, s * D + D);
            expect(Math.hypot(...row)).toBeCloseTo(EPSILON, 5);
            for (let f = 0; f < D; f++)
              expect(Math.abs(row[f]! - expected.deltas.get(item)![f]!)).toBeLessThan(1e-5);
          });
        }
      });
    }
});
