import { describe, expect, it } from 'vitest';
import { ConfigError, InteractionMatrix, Random } from '@advrec/data';
import { MatrixFactorization, SparseRows } from '@advrec/models';
import type { PerturbableSurface } from '@advrec/models';
import { describeAdversaryContract } from './contract.js';
import { craftPerturbation, createPgd, fgm, fgsm, getAdversary, pgd, pgdLinf } from './index.js';

const surface: PerturbableSurface = {
  name: 'itemEmbeddings',
  side: 'item',
  rows: 40,
  dimension: 6,
};

function randomGradient(rows: number, dimension: number, seed: number): SparseRows {
  const random = new Random(seed);
  const g = new SparseRows(dimension, rows);
  for (let r = 0; r < rows; r++) {
    const at = g.ensure(r * 3);
    for (let f = 0; f < dimension; f++) g.values[at + f] = random.nextGaussian();
  }
  return g;
}

describeAdversaryContract({ adversary: pgd });
describeAdversaryContract({ adversary: pgdLinf, norm: 'linf' });
describeAdversaryContract({
  adversary: createPgd({ randomStart: true, name: 'pgd-random-start-test' }),
  registered: false,
});

describe('built-in PGD', () => {
  it('is registered as pgd and pgd-linf, with its settings recorded', () => {
    expect(getAdversary('pgd')).toBe(pgd);
    expect(getAdversary('pgd-linf')).toBe(pgdLinf);
    expect(pgd.settings).toEqual({ steps: 5, stepSize: 0.5, norm: 'l2', randomStart: false });
    expect(pgdLinf.settings).toMatchObject({ norm: 'linf', steps: 5 });
  });

  it('is FGM (L2) and FGSM (L-infinity) exactly with one step of size 1 from zero', () => {
    const g = randomGradient(10, 6, 1);
    const context = { surface, random: new Random(0), step: 0 };
    const l2 = createPgd({ steps: 1, stepSize: 1, name: 'x' }).perturb(g, 0.7, context);
    const reference = fgm.perturb(g, 0.7, context);
    l2.values.forEach((v, k) => expect(v).toBeCloseTo(reference.values[k]!, 12));
    const linf = createPgd({ steps: 1, stepSize: 1, norm: 'linf', name: 'y' }).perturb(
      g,
      0.7,
      context,
    );
    expect(Array.from(linf.values)).toEqual(Array.from(fgsm.perturb(g, 0.7, context).values));
  });

  it('projects back onto the ball: L2 rescales, L-infinity clips', () => {
    const g = randomGradient(10, 6, 2);
    const random = new Random(0);
    const first = pgd.perturb(g, 0.5, { surface, random, step: 0 });
    for (const norm of first.norms()) expect(norm).toBeCloseTo(0.25, 12);
    // Along the same gradient again from the first point: the boundary, not beyond it.
    const second = pgd.perturb(g, 0.5, { surface, random, step: 1, previous: first });
    for (const norm of second.norms()) expect(norm).toBeCloseTo(0.5, 12);
    const third = pgd.perturb(g, 0.5, { surface, random, step: 2, previous: second });
    for (const norm of third.norms()) expect(norm).toBeCloseTo(0.5, 12);
    let linf = pgdLinf.perturb(g, 0.5, { surface, random, step: 0 });
    for (let step = 1; step < 4; step++)
      linf = pgdLinf.perturb(g, 0.5, { surface, random, step, previous: linf });
    for (let k = 0; k < linf.values.length; k++)
      expect(Math.abs(linf.values[k]!)).toBe(g.values[k] === 0 ? 0 : 0.5);
  });

  it('a random start is drawn from the seeded stream, inside the ball', () => {
    const start = createPgd({ randomStart: true, steps: 1, stepSize: 1e-9, name: 'z' });
    const g = randomGradient(200, 6, 3);
    const a = start.perturb(g, 1, { surface, random: new Random(7), step: 0 });
    const b = start.perturb(g, 1, { surface, random: new Random(7), step: 0 });
    const c = start.perturb(g, 1, { surface, random: new Random(8), step: 0 });
    expect(Array.from(a.values)).toEqual(Array.from(b.values));
    expect(Array.from(a.values)).not.toEqual(Array.from(c.values));
    const norms = Array.from(a.norms());
    for (const n of norms) expect(n).toBeLessThanOrEqual(1 + 1e-12);
    // Uniform in a 6-d ball: the mean radius is 6/7.
    const mean = norms.reduce((s, n) => s + n, 0) / norms.length;
    expect(mean).toBeGreaterThan(0.8);
    expect(mean).toBeLessThan(0.9);
  });

  it('refuses bad settings with field paths', () => {
    expect(() => createPgd({ steps: 0 })).toThrow(ConfigError);
    expect(() => createPgd({ steps: 2.5, stepSize: -1 })).toThrow(
      /adversaries\.pgd\.steps[\s\S]*adversaries\.pgd\.stepSize/,
    );
    expect(() => createPgd({ norm: 'l1' as 'l2' })).toThrow(/norm: must be "l2" or "linf"/);
  });

  it('lowers the training pair accuracy at least as much as FGM of the same size', async () => {
    const users = new Int32Array(400);
    const items = new Int32Array(400);
    for (let t = 0; t < 400; t++) {
      users[t] = t % 40;
      items[t] = (Math.floor(t / 40) * 6 + (t % 40) * 5) % 60;
    }
    const train = InteractionMatrix.fromPairs(40, 60, users, items);
    const model = new MatrixFactorization(train, { embeddingSize: 4, initStd: 0.5, seed: 3 });
    const single = await craftPerturbation(model, train, { adversary: fgm, epsilon: 0.6, seed: 1 });
    const iterative = await craftPerturbation(model, train, {
      adversary: pgd,
      epsilon: 0.6,
      seed: 1,
    });
    expect(iterative.cleanAccuracy).toBe(single.cleanAccuracy);
    expect(iterative.perturbedAccuracy).toBeLessThanOrEqual(single.perturbedAccuracy);
    for (const rows of iterative.perturbations.values())
      for (const norm of rows.norms()) expect(norm).toBeLessThanOrEqual(0.6 + 1e-9);
  });
});
