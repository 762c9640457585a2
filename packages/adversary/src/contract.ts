/**
 * The Adversary contract test suite, for plugin authors (and run by every built-in
 * adversary), beside the Model contract suite:
 *
 * ```ts
 * import { describeAdversaryContract } from '@advrec/adversary/contract';
 * describeAdversaryContract({ adversary: myAdversary });              // L2 ball per row
 * describeAdversaryContract({ adversary: mySignAttack, norm: 'linf' }); // L-infinity ball
 * ```
 *
 * It checks that the adversary is registered under its name with a supported version,
 * answers one row per gradient row (same ids, same order, the surface's dimension) on user
 * and item surfaces of different widths, stays within epsilon per row in its norm (also at
 * later steps of a multi-step adversary), gives zero at epsilon 0, is deterministic for a
 * seed, copes with zero gradient rows, and that a NaN or infinite gradient is refused with
 * the adversary's name.
 *
 * @packageDocumentation
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, Random } from '@advrec/data';
import { SparseRows } from '@advrec/models';
import type { PerturbableSurface } from '@advrec/models';
import { ADVERSARY_SPECIFICATION_VERSION, getAdversary, perturbSteps } from './adversary.js';
import type { Adversary } from './adversary.js';

/** Options of {@link describeAdversaryContract}. */
export interface AdversaryContractOptions {
  readonly adversary: Adversary;
  /** The ball the perturbation stays in, per row: `l2` (default; FGM, random) or `linf` (FGSM). */
  readonly norm?: 'l2' | 'linf';
  /** Slack allowed on the norm bound (default 1e-9, relative to epsilon). */
  readonly tolerance?: number;
  /** Check that `getAdversary(name)` returns this object (default true). */
  readonly registered?: boolean;
}

const SURFACES: readonly PerturbableSurface[] = [
  { name: 'userEmbeddings', side: 'user', rows: 40, dimension: 8 },
  { name: 'itemFeatures', side: 'item', rows: 60, dimension: 33 },
];

function gradient(surface: PerturbableSurface, seed: number, zeroRow = -1): SparseRows {
  const random = new Random(seed);
  const rows = new SparseRows(surface.dimension, 16);
  for (let r = surface.rows - 1; r >= 0; r -= 3) {
    const at = rows.ensure(r);
    for (let f = 0; f < surface.dimension; f++)
      rows.values[at + f] = r === zeroRow ? 0 : random.nextGaussian() * (1 + r);
  }
  return rows;
}

function rowNorm(rows: SparseRows, r: number, norm: 'l2' | 'linf'): number {
  const d = rows.dimension;
  let s = 0;
  for (let f = 0; f < d; f++) {
    const v = Math.abs(rows.values[r * d + f]!);
    s = norm === 'l2' ? s + v * v : Math.max(s, v);
  }
  return norm === 'l2' ? Math.sqrt(s) : s;
}

/** Registers the contract tests for one adversary with vitest. */
export function describeAdversaryContract(options: AdversaryContractOptions): void {
  const { adversary } = options;
  const norm = options.norm ?? 'l2';
  const tolerance = options.tolerance ?? 1e-9;
  const run = (surface: PerturbableSurface, g: SparseRows, epsilon: number, seed: number) =>
    perturbSteps(
      adversary,
      epsilon,
      [surface],
      new Random(seed),
      new Map([[surface.name, g]]),
      () =>
        // Later steps of a multi-step adversary: a fresh gradient over the same rows.
        new Map([[surface.name, gradient(surface, seed + 100)]]),
    ).then((m) => m.get(surface.name)!);

  describe(`${adversary.adversaryName} satisfies the Adversary contract`, () => {
    it('has a supported specification version and is registered under its name', () => {
      expect(adversary.specificationVersion).toBe(ADVERSARY_SPECIFICATION_VERSION);
      expect(adversary.adversaryName).toMatch(/^[a-z0-9][a-z0-9._-]*$/);
      expect(typeof adversary.description).toBe('string');
      expect(Number.isInteger(adversary.steps ?? 1) && (adversary.steps ?? 1) >= 1).toBe(true);
      if (options.registered !== false)
        expect(getAdversary(adversary.adversaryName)).toBe(adversary);
    });

    for (const surface of SURFACES)
      it(`answers row for row within epsilon (${norm}) on a ${surface.side} surface of width ${surface.dimension}`, async () => {
        for (const epsilon of [0.05, 0.5, 3]) {
          const g = gradient(surface, 7);
          const delta = await run(surface, g, epsilon, 1);
          expect(delta.dimension).toBe(surface.dimension);
          expect(Array.from(delta.rows)).toEqual(Array.from(g.rows));
          for (let r = 0; r < delta.size; r++)
            expect(rowNorm(delta, r, norm)).toBeLessThanOrEqual(epsilon * (1 + tolerance));
          // Every step of a multi-step adversary stays in the ball too.
          const steps = adversary.steps ?? 1;
          let previous: SparseRows | undefined;
          for (let step = 0; step < steps; step++) {
            previous = adversary.perturb(gradient(surface, 20 + step), epsilon, {
              surface,
              random: new Random(2),
              step,
              ...(previous ? { previous } : {}),
            });
            for (let r = 0; r < previous.size; r++)
              expect(rowNorm(previous, r, norm)).toBeLessThanOrEqual(epsilon * (1 + tolerance));
          }
        }
      });

    it('gives zero at epsilon 0, finite rows for a zero gradient row, and the same rows for the same seed', async () => {
      const surface = SURFACES[0]!;
      const zero = await run(surface, gradient(surface, 3), 0, 1);
      expect(zero.values.every((v) => v === 0)).toBe(true);
      const withZeroRow = await run(surface, gradient(surface, 3, surface.rows - 1), 0.5, 1);
      expect(withZeroRow.values.every((v) => Number.isFinite(v))).toBe(true);
      const a = await run(surface, gradient(surface, 4), 0.5, 9);
      const b = await run(surface, gradient(surface, 4), 0.5, 9);
      expect(Array.from(a.values)).toEqual(Array.from(b.values));
    });

    it('a NaN or infinite gradient is refused, naming the adversary', async () => {
      const surface = SURFACES[1]!;
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
        const g = gradient(surface, 5);
        g.values[3] = bad;
        const error = await run(surface, g, 0.5, 1).catch((e: unknown) => e);
        expect(ConfigError.isInstance(error)).toBe(true);
        expect(String(error)).toContain(`adversary ${adversary.adversaryName}`);
      }
    });
  });
}
