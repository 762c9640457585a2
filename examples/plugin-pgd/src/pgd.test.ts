import { describe as describeSuite, expect, it } from 'vitest';
import { Random, leaveOneOut, readMovieLens100K, toImplicit } from '@advrec/data';
import { craftPerturbation, fgm, getAdversary } from '@advrec/adversary';
import { describeAdversaryContract } from '@advrec/adversary/contract';
import { MatrixFactorization, SparseRows } from '@advrec/models';
import { Trainer, resolveTrainConfig, selectEngineProvider } from '@advrec/trainer';
import { sharedDataFiles } from '@advrec/testing';
import { createPgd, pgd } from './index.js';

function randomGradient(rows: number, dimension: number, seed: number): SparseRows {
  const random = new Random(seed);
  const g = new SparseRows(dimension, rows);
  for (let r = 0; r < rows; r++) {
    const at = g.ensure(r * 3);
    for (let f = 0; f < dimension; f++) g.values[at + f] = random.nextGaussian();
  }
  return g;
}

const surface = { name: 'userEmbeddings', side: 'user' as const, rows: 100, dimension: 8 };

// The exported contract suite, as any adversary plugin runs it.
describeAdversaryContract({ adversary: pgd });

describeSuite('pgd plugin', () => {
  it('registers itself as "example-pgd" on import', () => {
    expect(getAdversary('example-pgd')).toBe(pgd);
    expect(pgd.steps).toBe(5);
  });

  it('is FGM exactly with one step of size 1', () => {
    const g = randomGradient(10, 8, 1);
    const random = new Random(0);
    const one = createPgd({ steps: 1, stepSize: 1, name: 'pgd-1' }).perturb(g, 0.7, {
      surface,
      random,
      step: 0,
    });
    const reference = fgm.perturb(g, 0.7, { surface, random });
    expect(Array.from(one.rows)).toEqual(Array.from(reference.rows));
    one.values.forEach((v, k) => expect(v).toBeCloseTo(reference.values[k]!, 12));
  });

  it('projects every row back onto the epsilon ball after a step', () => {
    const g = randomGradient(10, 8, 2);
    const random = new Random(0);
    const first = pgd.perturb(g, 0.5, { surface, random, step: 0 });
    // A second step along the same gradient would leave the ball without the projection.
    const second = pgd.perturb(g, 0.5, { surface, random, step: 1, previous: first });
    for (const norm of second.norms()) expect(norm).toBeLessThanOrEqual(0.5 + 1e-12);
    for (const norm of first.norms()) expect(norm).toBeCloseTo(0.25, 12); // 2.5 / 5 x epsilon
    // From the first step's point, moving along g again reaches the boundary: norm = epsilon.
    for (const norm of second.norms()) expect(norm).toBeCloseTo(0.5, 12);
  });

  it('is a stronger attack than FGM of the same size on a trained MF (ML-100K)', async () => {
    const dataset = leaveOneOut(
      toImplicit(await readMovieLens100K(sharedDataFiles().movielens100k)),
      { seed: 1 },
    );
    const model = new MatrixFactorization(dataset, { embeddingSize: 16, seed: 1 });
    const trainer = await Trainer.create(model, dataset, { threads: 1, seed: 1 });
    await trainer.runPhase({ epochs: 30, adversarial: false });
    await trainer.close();
    const attack = (adversary: typeof pgd) =>
      craftPerturbation(model, dataset.train, { adversary, epsilon: 0.5, seed: 3 });
    const single = await attack(fgm);
    const iterative = await attack(pgd);
    expect(single.cleanAccuracy).toBeGreaterThan(0.85);
    expect(iterative.cleanAccuracy).toBe(single.cleanAccuracy);
    // Measured: clean 0.924 of the training pairs ordered; FGM leaves 0.886, PGD 0.879.
    expect(iterative.perturbedAccuracy).toBeLessThan(single.perturbedAccuracy);
    for (const rows of iterative.perturbations.values())
      for (const norm of rows.norms()) expect(norm).toBeLessThanOrEqual(0.5 + 1e-9);
  });

  it('trains APR with PGD on the generic engine', async () => {
    const dataset = leaveOneOut(
      toImplicit(await readMovieLens100K(sharedDataFiles().movielens100k)),
      { seed: 1 },
    );
    const model = new MatrixFactorization(dataset, { embeddingSize: 8, seed: 1 });
    const config = (engine?: string) =>
      resolveTrainConfig(
        { adversarial: { adversary: 'example-pgd' }, ...(engine ? { engine } : {}) },
        model,
      );
    // The fused kernel declares the single-step built-in adversaries only: auto falls through to generic.
    expect(selectEngineProvider(model, pgd, config()).name).toBe('generic');
    expect(() => selectEngineProvider(model, pgd, config('fused-mf'))).toThrow(
      /engine fused-mf: implements the single-step adversaries none, fgm, fgsm, random; example-pgd is not one of them/,
    );
    const trainer = await Trainer.create(model, dataset, {
      threads: 1,
      adversarial: { adversary: 'example-pgd', epsilon: 0.5 },
    });
    const phase = await trainer.runPhase({ epochs: 2, adversarial: true });
    await trainer.close();
    expect(phase.epochs).toHaveLength(2);
    expect(phase.epochs[1]!.loss).toBeLessThan(phase.epochs[0]!.loss);
    expect(phase.epochs[1]!.adversarialLoss).toBeGreaterThan(0);
  });
});
