import { describe, expect, it } from 'vitest';
import { ConfigError, InteractionMatrix, Random } from '@advrec/data';
import { bprBatch } from '@advrec/losses';
import {
  ITEM_FEATURES,
  MatrixFactorization,
  SparseRows,
  VisualBPR,
  forwardPairs,
} from '@advrec/models';
import type { PerturbableSurface, SparseRowsByName } from '@advrec/models';
import {
  ADVERSARY_SPECIFICATION_VERSION,
  craftPerturbation,
  fgm,
  fgsm,
  getAdversary,
  listAdversaries,
  noAdversary,
  perturbSteps,
  perturbedCopy,
  randomNoise,
  registerAdversary,
} from './index.js';
import { describeAdversaryContract } from './contract.js';
import type { Adversary } from './index.js';

const surface: PerturbableSurface = {
  name: 'userEmbeddings',
  side: 'user',
  rows: 10,
  dimension: 4,
};
const context = { surface, random: new Random(1) };

function gradient(): SparseRows {
  const g = new SparseRows(4);
  const a = g.ensure(3);
  g.values.set([3, 4, 0, 0], a);
  const b = g.ensure(7);
  g.values.set([0, -2, 0.5, 0], b);
  g.ensure(9); // a zero gradient row
  return g;
}

describe('built-in adversaries', () => {
  it('FGM: epsilon * g / ||g|| per row (APR Eq. 3), zero rows stay zero', () => {
    const d = fgm.perturb(gradient(), 0.5, context);
    expect(Array.from(d.rows)).toEqual([3, 7, 9]);
    [0.3, 0.4, 0, 0].forEach((v, f) => expect(d.values[f]).toBeCloseTo(v, 15));
    expect(d.norms()[1]).toBeCloseTo(0.5, 12);
    expect(Array.from(d.values.subarray(8, 12))).toEqual([0, 0, 0, 0]);
  });

  it('FGSM: epsilon * sign(g)', () => {
    const d = fgsm.perturb(gradient(), 0.25, context);
    expect(Array.from(d.values.subarray(0, 8))).toEqual([0.25, 0.25, 0, 0, 0, -0.25, 0.25, 0]);
  });

  it('random: norm epsilon per row, direction independent of the gradient, seeded', () => {
    const a = randomNoise.perturb(gradient(), 2, { surface, random: new Random(5) });
    const b = randomNoise.perturb(gradient(), 2, { surface, random: new Random(5) });
    expect(a.values).toEqual(b.values);
    for (const n of a.norms()) expect(n).toBeCloseTo(2, 12);
    // Directions are spread over the sphere: the mean of many unit draws is near zero.
    const many = new SparseRows(4);
    for (let r = 0; r < 4000; r++) many.ensure(r);
    const noise = randomNoise.perturb(many, 1, { surface, random: new Random(9) });
    const mean = [0, 0, 0, 0];
    for (let r = 0; r < 4000; r++)
      for (let f = 0; f < 4; f++) mean[f]! += noise.values[r * 4 + f]! / 4000;
    for (const m of mean) expect(Math.abs(m)).toBeLessThan(0.03);
  });

  it('none: zero perturbation', () => {
    expect(noAdversary.perturb(gradient(), 1, context).values.every((v) => v === 0)).toBe(true);
  });
});

describe('registry', () => {
  it('registers a plugin (PGD-like) and lists it; unknown names list what exists', () => {
    const twoStep: Adversary = {
      specificationVersion: ADVERSARY_SPECIFICATION_VERSION,
      adversaryName: 'half-fgm-test',
      description: 'FGM at half the budget',
      usesGradient: true,
      perturb: (g, epsilon, c) => fgm.perturb(g, epsilon / 2, c),
    };
    registerAdversary(twoStep);
    expect(getAdversary('half-fgm-test')).toBe(twoStep);
    expect(listAdversaries().map((a) => a.adversaryName)).toEqual(
      expect.arrayContaining(['fgm', 'fgsm', 'random', 'none', 'half-fgm-test']),
    );
    expect(() => getAdversary('pgd-l1')).toThrow(
      /unknown adversary "pgd-l1"; registered: fgm, fgsm, half-fgm-test, none, pgd, pgd-linf, random/,
    );
    expect(() => registerAdversary({ ...twoStep, perturb: fgm.perturb })).toThrow(ConfigError);
    expect(() =>
      registerAdversary({ ...twoStep, adversaryName: 'v2', specificationVersion: 'v2' as 'v1' }),
    ).toThrow(/unsupported v2/);
  });
});

describe('craftPerturbation (APR section 2.3)', () => {
  const train = InteractionMatrix.fromPairs(
    6,
    8,
    Int32Array.of(0, 0, 1, 2, 3, 4, 5, 5),
    Int32Array.of(1, 2, 3, 1, 4, 5, 6, 7),
  );
  const model = new MatrixFactorization(
    { numUsers: 6, numItems: 8 },
    { embeddingSize: 3, initStd: 0.5, seed: 2 },
  );

  it('perturbs every touched row by epsilon, lowers the training pair accuracy, and leaves the model as is', async () => {
    const before = model.itemEmbeddings.values.slice();
    const crafted = await craftPerturbation(model, train, { adversary: fgm, epsilon: 3, seed: 4 });
    expect(model.itemEmbeddings.values).toEqual(before);
    expect(crafted.triples).toBe(8);
    for (const rows of crafted.perturbations.values())
      for (const n of rows.norms()) expect(n).toBeCloseTo(3, 9);
    expect(crafted.perturbedAccuracy).toBeLessThanOrEqual(crafted.cleanAccuracy);
    const attacked = perturbedCopy(model, crafted.perturbations);
    expect(attacked.modelName).toBe('mf');
    expect(attacked.tables[1]!.values).not.toEqual(before);
  });

  it('rejects bad options with field paths', async () => {
    await expect(
      craftPerturbation(model, train, { adversary: fgm, epsilon: -1, surfaces: ['itemFeatures'] }),
    ).rejects.toThrow(/epsilon[\s\S]*itemFeatures/);
  });
});

for (const [adversary, norm] of [
  [fgm, 'l2'],
  [fgsm, 'linf'],
  [randomNoise, 'l2'],
  [noAdversary, 'l2'],
] as const)
  describeAdversaryContract({ adversary, norm });

describe('perturbSteps refuses a broken plugin adversary, naming it', () => {
  const surface = { name: 'userEmbeddings', side: 'user', rows: 4, dimension: 2 } as const;
  const g = new SparseRows(2);
  g.values[g.ensure(1)] = 1;
  for (const [what, perturb] of [
    ['NaN', () => brokenRows(Number.NaN)],
    ['a wrong width', () => new SparseRows(3)],
    ['rows the gradient does not have', () => brokenRows(0.1, 10_000_000)],
    ['nothing', () => null],
  ] as const)
    it(`one that returns ${what}`, async () => {
      const broken: Adversary = {
        ...fgm,
        adversaryName: 'broken-plugin',
        perturb: perturb as Adversary['perturb'],
      };
      await expect(
        perturbSteps(
          broken,
          0.5,
          [surface],
          new Random(1),
          new Map([[surface.name, g]]),
          () => new Map(),
        ),
      ).rejects.toThrow(/adversary broken-plugin/);
    });
});

function brokenRows(value: number, row = 1): SparseRows {
  const rows = new SparseRows(2);
  const at = rows.ensure(row);
  rows.values[at] = value;
  return rows;
}

describe('FGM on the item features of the AMR model (Eq. 4, y_ui = p_u . (q_i + E c_i))', () => {
  it('lowers every pair margin by exactly 2 epsilon ||E^T p_u||: the score is linear in c_i, so the adversarial term is a margin on the visual part that shrinking E removes', async () => {
    const random = new Random(3);
    const data = Float32Array.from({ length: 12 * 7 }, () => random.nextFloat() * 2 - 1);
    const model = new VisualBPR(
      { numUsers: 6, numItems: 12 },
      { data, dimension: 7 },
      {
        embeddingSize: 4,
        initStd: 0.5,
        projectionInitStd: 0.3,
        featureNormalization: 'none',
        itemIdDropout: 0,
      },
    );
    // Six pairs, no item twice: each item's gradient comes from one pair.
    const users = Int32Array.from([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
    const items = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const clean = await forwardPairs(model, users, items, 12);
    const dScores = new Float64Array(12);
    bprBatch(
      clean.scores.subarray(0, 6),
      clean.scores.subarray(6),
      6,
      dScores.subarray(0, 6),
      dScores.subarray(6),
      1,
    );
    const gradients: SparseRowsByName = new Map();
    await clean.backward(dScores, gradients, [ITEM_FEATURES]);
    const features = model.surfaces.find((s) => s.name === ITEM_FEATURES)!;
    const epsilon = 0.37;
    const perturbations = await perturbSteps(
      fgm,
      epsilon,
      [features],
      new Random(1),
      gradients,
      () => {
        throw new Error('FGM takes one step');
      },
    );
    const perturbed = await forwardPairs(model, users, items, 12, perturbations);
    const k = 4;
    const p = model.tables.find((t) => t.name === 'userEmbeddings')!.values;
    const e = model.featureProjection.values; // E stored D x K: row f of E^T
    for (let t = 0; t < 6; t++) {
      let norm = 0;
      for (let f = 0; f < 7; f++) {
        let s = 0;
        for (let j = 0; j < k; j++) s += e[f * k + j]! * p[users[t]! * k + j]!;
        norm += s * s;
      }
      const cleanMargin = clean.scores[t]! - clean.scores[6 + t]!;
      const perturbedMargin = perturbed.scores[t]! - perturbed.scores[6 + t]!;
      expect(cleanMargin - perturbedMargin).toBeCloseTo(2 * epsilon * Math.sqrt(norm), 5);
    }
  });
});
