import { beforeAll, describe, expect, it } from 'vitest';
import {
  Random,
  generateSynthetic,
  leaveOneOut,
  readMovieLens100K,
  toImplicit,
} from '@advrec/data';
import type { Dataset } from '@advrec/data';
import {
  ADVERSARY_SPECIFICATION_VERSION,
  craftPerturbation,
  fgm,
  hasAdversary,
  perturbedCopy,
  registerAdversary,
} from '@advrec/adversary';
import {
  ITEM_EMBEDDINGS,
  ITEM_FEATURES,
  MatrixFactorization,
  USER_EMBEDDINGS,
  VisualBPR,
} from '@advrec/models';
import { sharedDataFiles } from '@advrec/testing';
import { robustnessSweep } from './robustness.js';
import { trainBpr } from './test-support/train-bpr.js';

let dataset: Dataset;
let model: MatrixFactorization;

beforeAll(async () => {
  dataset = leaveOneOut(toImplicit(await readMovieLens100K(sharedDataFiles().movielens100k)));
  model = new MatrixFactorization(dataset, { embeddingSize: 32, seed: 3 });
  trainBpr(model, dataset.train, { epochs: 30, seed: 1 });
}, 120_000);

describe('robustness of a trained MF-BPR (APR section 2.3)', () => {
  it('FGM perturbations are norm epsilon per row and leave the model untouched', async () => {
    const before = model.userEmbeddings.values.slice();
    const crafted = await craftPerturbation(model, dataset.train, {
      adversary: fgm,
      epsilon: 0.5,
      seed: 1,
    });
    expect(model.userEmbeddings.values).toEqual(before);
    for (const rows of crafted.perturbations.values()) {
      const norms = rows.norms();
      expect(rows.size).toBeGreaterThan(100);
      for (const n of norms) expect(n).toBeCloseTo(0.5, 9);
    }
    const copy = perturbedCopy(model, crafted.perturbations);
    expect(copy.tables[0]!.values).not.toEqual(before);
    expect(crafted.perturbedAccuracy).toBeLessThan(crafted.cleanAccuracy);
  });

  it('adversarial noise hurts far more than random noise of the same size, growing with epsilon', async () => {
    const report = await robustnessSweep(model, dataset, {
      epsilons: [0.5, 2],
      cutoffs: [100],
      seed: 2,
    });
    const at = (adversary: string, epsilon: number) =>
      report.points.find((p) => p.adversary === adversary && p.epsilon === epsilon)!;
    const drop = (adversary: string, epsilon: number) =>
      -at(adversary, epsilon).relativeChange['ndcg@100']!;
    expect(report.clean['ndcg@100']).toBeGreaterThan(0.1);
    expect(drop('fgm', 0.5)).toBeGreaterThan(0.1);
    expect(drop('fgm', 2)).toBeGreaterThan(drop('fgm', 0.5));
    // Measured: FGM -14.9% vs random -5.4% at 0.5; -58% vs -31% at 2.
    expect(drop('fgm', 0.5)).toBeGreaterThan(2 * drop('random', 0.5));
    expect(drop('fgm', 2)).toBeGreaterThan(drop('random', 2));
    expect(at('fgm', 2).trainAccuracy).toBeLessThan(report.cleanTrainAccuracy);
    // Random noise: three seeded draws averaged per user; every point has its interval.
    expect(at('random', 0.5).draws).toBe(3);
    for (const p of report.points) {
      const i = p.intervals['ndcg@100']!;
      expect(i.low).toBeLessThanOrEqual(p.relativeChange['ndcg@100']!);
      expect(i.high).toBeGreaterThanOrEqual(p.relativeChange['ndcg@100']!);
      expect(i.coversZero).toBe(i.low <= 0 && i.high >= 0);
    }
    // A drop of 15% over 943 users is far outside the noise.
    expect(at('fgm', 0.5).intervals['ndcg@100']!.high).toBeLessThan(0);
    expect(report.warnings).toEqual([]);
  }, 120_000);

  for (const surface of [ITEM_EMBEDDINGS, USER_EMBEDDINGS])
    it(`${surface}: the evaluation-side attack never raises a metric, and the exact or certified bound is never above any attack`, async () => {
      const epsilons = [0.25, 1];
      const report = await robustnessSweep(model, dataset, {
        epsilons,
        adversaries: ['fgm', 'pgd', 'random'],
        surfaces: [surface],
        cutoffs: [10, 50],
        seed: 4,
      });
      const evaluationSide = report.points.filter((p) => p.attack === 'evaluation');
      expect(evaluationSide.map((p) => p.adversary)).toEqual(['fgm', 'fgm', 'pgd', 'pgd']);
      expect(report.points.find((p) => p.adversary === 'pgd')!.adversarySettings).toMatchObject({
        steps: 5,
      });
      for (const p of evaluationSide)
        for (const [key, value] of Object.entries(p.metrics))
          expect(value).toBeLessThanOrEqual(report.clean[key]!);
      expect(report.bounds.map((b) => [b.surface, b.kind, b.epsilon])).toEqual([
        [surface, surface === ITEM_EMBEDDINGS ? 'exact' : 'certified', 0.25],
        [surface, surface === ITEM_EMBEDDINGS ? 'exact' : 'certified', 1],
      ]);
      for (const bound of report.bounds)
        for (const p of report.points.filter((x) => x.epsilon === bound.epsilon))
          for (const [key, value] of Object.entries(bound.metrics))
            expect(value, `${p.adversary} ${p.attack} ${key}`).toBeLessThanOrEqual(
              p.metrics[key]! + 1e-12,
            );
      const change = (attack: string, epsilon: number) =>
        report.points.find(
          (p) => p.adversary === 'fgm' && p.attack === attack && p.epsilon === epsilon,
        )!.relativeChange['ndcg@10']!;
      // Each user's own row aimed at its held-out item hurts more than the papers' FGM; one
      // item table for every user (the gradients of users sharing a competitor partly cancel)
      // hurts less here (measured: -33% against -39% at epsilon 1), which is why the exact
      // per-user worst case is reported beside it.
      if (surface === USER_EMBEDDINGS)
        expect(change('evaluation', 1)).toBeLessThan(change('training-loss', 1));
    }, 120_000);
});

describe('robustness warnings fire when they should', () => {
  it('an "attack" that raises the metric, and adversaries of different balls at one epsilon', async () => {
    // An "adversary" that helps: it moves each user's row towards its held-out item.
    if (!hasAdversary('helpful-test'))
      registerAdversary({
        specificationVersion: ADVERSARY_SPECIFICATION_VERSION,
        adversaryName: 'helpful-test',
        description: 'towards the held-out item (test)',
        usesGradient: true,
        perturb(gradient, epsilon, context) {
          const out = fgm.perturb(gradient, 0, context);
          const d = out.dimension;
          const q = model.itemEmbeddings.values;
          out.rows.forEach((u, r) => {
            const t = dataset.test!.row(u)[0];
            if (context.surface.name !== USER_EMBEDDINGS || t === undefined) return;
            let n = 0;
            for (let f = 0; f < d; f++) n += q[t * d + f]! ** 2;
            for (let f = 0; f < d; f++)
              out.values[r * d + f] = (epsilon * q[t * d + f]!) / Math.sqrt(n);
          });
          return out;
        },
      });
    const report = await robustnessSweep(model, dataset, {
      epsilons: [0.5],
      adversaries: ['helpful-test', 'fgsm'],
      surfaces: [USER_EMBEDDINGS],
      attacks: ['training-loss'],
      cutoffs: [10],
      bounds: false,
    });
    expect(report.points[0]!.relativeChange['ndcg@10']).toBeGreaterThan(0);
    const codes = report.warnings.map((w) => w.code);
    expect(codes).toEqual(['attack-raises-metric', 'norms-differ']);
    expect(report.warnings[0]!.message).toMatch(/helpful-test \(training-loss\) raised ndcg@10/);
    expect(report.warnings[1]!.message).toMatch(
      /fgsm \(L-infinity ball\) and helpful-test \(L2 ball\)/,
    );
    expect(report.boundsNote).toBe('not asked for');
  }, 60_000);
});

describe('robustness of VBPR to perturbations of its item features (AMR section 3.2)', () => {
  it('FGM on itemFeatures: norm epsilon per item with an image, through the batch step; NDCG drops', async () => {
    const synthetic = generateSynthetic({ users: 300, items: 200, featureDimension: 16, seed: 3 });
    const data = leaveOneOut(toImplicit(synthetic.log));
    const random = new Random(4);
    const features = {
      data: Float32Array.from({ length: data.numItems * 16 }, () => random.nextGaussian()),
      dimension: 16,
    };
    const vbpr = new VisualBPR(
      data,
      features,
      { embeddingSize: 8, seed: 1 },
      { train: data.train },
    );
    trainBpr(vbpr, data.train, { epochs: 10, seed: 2 });
    const crafted = await craftPerturbation(vbpr, data.train, {
      adversary: fgm,
      epsilon: 2,
      surfaces: [ITEM_FEATURES],
      seed: 1,
    });
    const rows = crafted.perturbations.get(ITEM_FEATURES)!;
    expect(rows.dimension).toBe(16);
    expect(rows.size).toBeGreaterThan(150);
    for (const n of rows.norms()) expect(n).toBeCloseTo(2, 9);
    const report = await robustnessSweep(vbpr, data, {
      epsilons: [2],
      adversaries: ['fgm'],
      surfaces: [ITEM_FEATURES],
      cutoffs: [20],
    });
    expect(report.points[0]!.relativeChange['ndcg@20']).toBeLessThan(0);
    expect(report.points[0]!.trainAccuracy).toBeLessThan(report.cleanTrainAccuracy);
    expect(report.bounds[0]!.kind).toBe('exact');
    expect(report.bounds[0]!.metrics['ndcg@20']).toBeLessThanOrEqual(
      report.points[0]!.metrics['ndcg@20']!,
    );
    expect(report.warnings.map((w) => w.code)).toEqual([]);
    // E = 0: the scores ignore the features, and the report says so.
    const collapsed = perturbedCopy(vbpr, new Map()) as VisualBPR;
    collapsed.featureProjection.values.fill(0);
    const flat = await robustnessSweep(collapsed, data, {
      epsilons: [2],
      adversaries: ['fgm'],
      surfaces: [ITEM_FEATURES],
      cutoffs: [20],
    });
    expect(flat.warnings.map((w) => w.code)).toContain('visual-part-collapsed');
  }, 60_000);
});
