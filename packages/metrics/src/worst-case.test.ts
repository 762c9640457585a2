import { describe, expect, it } from 'vitest';
import { Random, generateSampledTestSet, generateSynthetic, leaveOneOut } from '@advrec/data';
import type { Dataset } from '@advrec/data';
import { perturbedCopy } from '@advrec/adversary';
import {
  ITEM_EMBEDDINGS,
  ITEM_FEATURES,
  MatrixFactorization,
  SparseRows,
  USER_EMBEDDINGS,
  VisualBPR,
} from '@advrec/models';
import type { Model } from '@advrec/models';
import { evaluateFullRanking, evaluateSampled } from './evaluate.js';
import { worstCaseBounds } from './worst-case.js';

const cutoffs = [3, 10];
const metrics = ['hr', 'ndcg', 'recall', 'mrr'] as const;

function tiny(seed: number): { dataset: Dataset; mf: MatrixFactorization } {
  const dataset = leaveOneOut(
    generateSynthetic({ users: 12, items: 30, meanPerUser: 8, seed }).log,
    { seed },
  );
  const mf = new MatrixFactorization(dataset, { embeddingSize: 2, initStd: 0.6, seed });
  return { dataset, mf };
}

/** One user's metrics under the model as it is. */
async function userValues(model: Model, dataset: Dataset, u: number) {
  const r = await evaluateFullRanking(model, dataset, {
    cutoffs,
    metrics: [...metrics],
    users: Int32Array.of(u),
    engine: 'js',
    threads: 1,
  });
  return r.metrics;
}

/** Perturbation rows for every row of a surface (one direction per row). */
function rows(count: number, dimension: number, fill: (row: number, out: Float64Array) => void) {
  const out = new SparseRows(dimension, count);
  const scratch = new Float64Array(dimension);
  for (let r = 0; r < count; r++) {
    const at = out.ensure(r);
    fill(r, scratch);
    out.values.set(scratch, at);
  }
  return out;
}

describe('worstCaseBounds: exact worst cases where the score is affine (MF, VBPR)', () => {
  it("at epsilon 0 gives the evaluator's figures, user by user", async () => {
    const { dataset, mf } = tiny(1);
    const report = await worstCaseBounds(mf, dataset, {
      epsilons: [0],
      cutoffs,
      metrics: [...metrics],
    });
    const clean = await evaluateFullRanking(mf, dataset, {
      cutoffs,
      metrics: [...metrics],
      engine: 'js',
    });
    expect(Array.from(report.users)).toEqual(Array.from(clean.users));
    for (const key of Object.keys(clean.metrics)) {
      expect(Array.from(report.cleanPerUser[key]!)).toEqual(Array.from(clean.perUser[key]!));
      for (const point of report.points)
        expect(Array.from(point.perUser[key]!)).toEqual(Array.from(clean.perUser[key]!));
    }
    expect(report.points.map((p) => [p.surface, p.kind])).toEqual([
      [USER_EMBEDDINGS, 'certified'],
      [ITEM_EMBEDDINGS, 'exact'],
    ]);
  });

  for (const norm of ['l2', 'linf'] as const)
    it(`item embeddings (${norm}): the bound is reached by moving held-out rows against p_u and the others along it`, async () => {
      const { dataset, mf } = tiny(2);
      const epsilon = 0.4;
      const report = await worstCaseBounds(mf, dataset, {
        epsilons: [epsilon],
        surfaces: [ITEM_EMBEDDINGS],
        norms: [norm],
        cutoffs,
        metrics: [...metrics],
      });
      const point = report.points[0]!;
      expect(point.kind).toBe('exact');
      const p = mf.userEmbeddings.values;
      let lowered = 0;
      for (let b = 0; b < report.users.length; b++) {
        const u = report.users[b]!;
        const test = new Set(dataset.test!.row(u));
        const w = [p[2 * u]!, p[2 * u + 1]!];
        const length = Math.hypot(w[0]!, w[1]!);
        // The worst case: along w (L2) or sign(w) (L-infinity), against it for held-out items.
        const direction = norm === 'l2' ? w.map((x) => x / length) : w.map(Math.sign);
        const delta = rows(dataset.numItems, 2, (i, out) => {
          const sign = test.has(i) ? -1 : 1;
          out[0] = sign * epsilon * direction[0]!;
          out[1] = sign * epsilon * direction[1]!;
        });
        const attacked = await userValues(
          perturbedCopy(mf, new Map([[ITEM_EMBEDDINGS, delta]])),
          dataset,
          u,
        );
        for (const key of Object.keys(attacked))
          expect(point.perUser[key]![b], `user ${u} ${key}`).toBeCloseTo(attacked[key]!, 12);
        // Random perturbations in the ball never go below it (brute force).
        const random = new Random(u);
        for (let trial = 0; trial < 20; trial++) {
          const noise = rows(dataset.numItems, 2, (_, out) => {
            const angle = random.nextFloat() * 2 * Math.PI;
            const radius = epsilon * Math.sqrt(random.nextFloat());
            out[0] =
              norm === 'l2' ? radius * Math.cos(angle) : (2 * random.nextFloat() - 1) * epsilon;
            out[1] =
              norm === 'l2' ? radius * Math.sin(angle) : (2 * random.nextFloat() - 1) * epsilon;
          });
          const tried = await userValues(
            perturbedCopy(mf, new Map([[ITEM_EMBEDDINGS, noise]])),
            dataset,
            u,
          );
          for (const key of Object.keys(tried))
            expect(tried[key]!).toBeGreaterThanOrEqual(point.perUser[key]![b]! - 1e-12);
        }
        if (point.perUser['ndcg@10']![b]! < report.cleanPerUser['ndcg@10']![b]!) lowered++;
      }
      expect(lowered).toBeGreaterThan(0);
    });

  it('user embeddings: a certified lower bound, never above any perturbation of the row (brute force over the disk)', async () => {
    const { dataset, mf } = tiny(3);
    const epsilons = [0.15, 0.5];
    const report = await worstCaseBounds(mf, dataset, {
      epsilons,
      surfaces: [USER_EMBEDDINGS],
      cutoffs,
      metrics: [...metrics],
    });
    let tight = 0;
    for (const [k, epsilon] of epsilons.entries()) {
      const point = report.points[k]!;
      expect(point.kind).toBe('certified');
      for (let b = 0; b < report.users.length; b++) {
        const u = report.users[b]!;
        let worst = Infinity;
        // Every direction on a fine grid of the disk's boundary and inside.
        for (let a = 0; a < 180; a++)
          for (const radius of [0.25, 0.5, 0.75, 1]) {
            const angle = (a / 180) * 2 * Math.PI;
            const delta = new SparseRows(2, 1);
            const at = delta.ensure(u);
            delta.values[at] = epsilon * radius * Math.cos(angle);
            delta.values[at + 1] = epsilon * radius * Math.sin(angle);
            const values = await userValues(
              perturbedCopy(mf, new Map([[USER_EMBEDDINGS, delta]])),
              dataset,
              u,
            );
            for (const key of Object.keys(values))
              expect(values[key]!, `user ${u} ${key} eps ${epsilon}`).toBeGreaterThanOrEqual(
                point.perUser[key]![b]! - 1e-12,
              );
            worst = Math.min(worst, values['ndcg@10']!);
          }
        if (Math.abs(worst - point.perUser['ndcg@10']![b]!) < 1e-12) tight++;
      }
    }
    // With one held-out item and two dimensions, the bound is reached for most users.
    expect(tight).toBeGreaterThan(report.users.length);
  }, 60_000);

  it('VBPR item features: exact, reached by moving c_t against E^T p_u and the other rows along it', async () => {
    const dataset = leaveOneOut(
      generateSynthetic({ users: 10, items: 24, meanPerUser: 8, seed: 5 }).log,
      {
        seed: 5,
      },
    );
    const random = new Random(5);
    const data = Float32Array.from({ length: 24 * 6 }, () => random.nextFloat() * 2 - 1);
    const vbpr = new VisualBPR(
      dataset,
      { data, dimension: 6 },
      {
        embeddingSize: 3,
        initStd: 0.5,
        projectionInitStd: 0.4,
        featureNormalization: 'none',
        itemIdDropout: 0,
      },
    );
    const epsilon = 0.3;
    const report = await worstCaseBounds(vbpr, dataset, {
      epsilons: [epsilon],
      surfaces: [ITEM_FEATURES],
      cutoffs,
      metrics: [...metrics],
    });
    const point = report.points[0]!;
    expect(point.kind).toBe('exact');
    // The gradient w.r.t. c_i for user u, read from a probe: score(u, i) with c_i moved along each axis.
    for (let b = 0; b < report.users.length; b++) {
      const u = report.users[b]!;
      const w = new Float64Array(6);
      const base = vbpr.score(Int32Array.of(u), Int32Array.of(0))[0]!;
      for (let f = 0; f < 6; f++) {
        const probe = new SparseRows(6, 1);
        const at = probe.ensure(0);
        probe.values[at + f] = 1;
        w[f] =
          perturbedCopy(vbpr, new Map([[ITEM_FEATURES, probe]])).score(
            Int32Array.of(u),
            Int32Array.of(0),
          )[0]! - base;
      }
      const length = Math.hypot(...w);
      const test = new Set(dataset.test!.row(u));
      const delta = rows(dataset.numItems, 6, (i, out) => {
        for (let f = 0; f < 6; f++) out[f] = (test.has(i) ? -1 : 1) * epsilon * (w[f]! / length);
      });
      const attacked = await userValues(
        perturbedCopy(vbpr, new Map([[ITEM_FEATURES, delta]])),
        dataset,
        u,
      );
      for (const key of Object.keys(attacked))
        expect(point.perUser[key]![b]).toBeCloseTo(attacked[key]!, 9);
    }
    expect(report.sensitivity[ITEM_FEATURES]).toBeGreaterThan(0);
  });

  it('the sampled protocol: the evaluator figures at epsilon 0, and each case exact worst case reached', async () => {
    const { dataset, mf } = tiny(4);
    const testSet = generateSampledTestSet(dataset, { negatives: 10, seed: 2 });
    const epsilon = 0.3;
    const report = await worstCaseBounds(mf, dataset, {
      epsilons: [0, epsilon],
      surfaces: [ITEM_EMBEDDINGS],
      cutoffs,
      metrics: [...metrics],
      testSet,
    });
    const clean = await evaluateSampled(mf, dataset, testSet, { cutoffs, metrics: [...metrics] });
    for (const key of Object.keys(clean.metrics)) {
      expect(Array.from(report.cleanPerUser[key]!)).toEqual(Array.from(clean.perUser[key]!));
      expect(Array.from(report.points[0]!.perUser[key]!)).toEqual(Array.from(clean.perUser[key]!));
    }
    // Each case's worst case: the positive's row against p_u, its negatives' along it.
    const p = mf.userEmbeddings.values;
    const n = testSet.negativesPerCase;
    for (let c = 0; c < testSet.numCases; c++) {
      const u = testSet.users[c]!;
      const length = Math.hypot(p[2 * u]!, p[2 * u + 1]!);
      const delta = rows(dataset.numItems, 2, (i, out) => {
        const sign = i === testSet.positives[c] ? -1 : 1;
        out[0] = (sign * epsilon * p[2 * u]!) / length;
        out[1] = (sign * epsilon * p[2 * u + 1]!) / length;
      });
      const attacked = perturbedCopy(mf, new Map([[ITEM_EMBEDDINGS, delta]]));
      const positive = attacked.score(Int32Array.of(u), Int32Array.of(testSet.positives[c]!))[0]!;
      const negatives = attacked.score(
        new Int32Array(n).fill(u),
        Int32Array.from(testSet.negatives.subarray(c * n, (c + 1) * n)),
      );
      const rank = 1 + negatives.filter((s) => s >= positive - 1e-12).length;
      expect(report.points[1]!.perUser['hr@3']![c]).toBe(rank <= 3 ? 1 : 0);
    }
  });

  it('refuses a surface that is not affine or unknown, and bad epsilons, with paths', async () => {
    const { dataset, mf } = tiny(1);
    await expect(
      worstCaseBounds(mf, dataset, { epsilons: [-1, Number.NaN], surfaces: ['itemFeatures'] }),
    ).rejects.toThrow(
      /epsilons\[0\][\s\S]*epsilons\[1\][\s\S]*surfaces\[0\]: model mf has no surface "itemFeatures"/,
    );
  });
});
