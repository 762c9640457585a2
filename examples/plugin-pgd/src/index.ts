/**
 * An example advrec plugin: projected gradient descent (PGD, Madry et al. 2018) written as a
 * plugin Adversary. Importing this module registers it as `example-pgd` (5 steps of size
 * 2.5 epsilon / 5), so `advrec --plugin @advrec/example-plugin-pgd train --adversary
 * example-pgd` and `advrec attack --adversaries fgm,example-pgd` work without changing
 * advrec. advrec has its own `pgd` and `pgd-linf` built in (`@advrec/adversary`); this
 * package shows how a plugin adds an adversary of its own.
 *
 * @packageDocumentation
 */
import {
  ADVERSARY_SPECIFICATION_VERSION,
  getAdversary,
  registerAdversary,
} from '@advrec/adversary';
import type { Adversary } from '@advrec/adversary';
import { SparseRows } from '@advrec/models';

/** Options of {@link createPgd}. */
export interface PgdOptions {
  /** Gradient steps (default 5). */
  readonly steps?: number;
  /** Step size as a multiple of epsilon (default 2.5 / steps, Madry et al.'s rule of thumb). */
  readonly stepSize?: number;
  /** Registered name (default `example-pgd`). */
  readonly name?: string;
}

/**
 * PGD with an L2 ball per row, the APR/AMR norm bound: start at zero, take `steps` steps of
 * `stepSize * epsilon * g / ||g||` (an FGM step at the current perturbation), and after
 * each step project every row back onto `||delta|| <= epsilon`. With one step and step size
 * 1 it is FGM exactly.
 */
export function createPgd(options: PgdOptions = {}): Adversary {
  const steps = options.steps ?? 5;
  const stepSize = options.stepSize ?? 2.5 / steps;
  if (!(Number.isInteger(steps) && steps >= 1))
    throw new RangeError(`pgd steps must be an integer >= 1, got ${steps}`);
  if (!(stepSize > 0)) throw new RangeError(`pgd stepSize must be > 0, got ${stepSize}`);
  return {
    specificationVersion: ADVERSARY_SPECIFICATION_VERSION,
    adversaryName: options.name ?? 'example-pgd',
    description: `projected gradient descent: ${steps} FGM steps of ${stepSize.toFixed(2)} epsilon, projected onto the L2 ball of radius epsilon per row`,
    usesGradient: true,
    steps,
    perturb(gradient, epsilon, context) {
      const d = gradient.dimension;
      const out = new SparseRows(d, gradient.size);
      const g = gradient.values;
      const norms = gradient.norms();
      const previous = context.previous;
      const rows = gradient.rows;
      for (let r = 0; r < gradient.size; r++) {
        const at = out.ensure(rows[r]!);
        const v = out.values;
        const before = previous ? previous.offsetOf(rows[r]!) : -1;
        const base = before >= 0 ? previous!.values : null;
        const n = norms[r]!;
        const scale = n > 0 ? (stepSize * epsilon) / n : 0;
        let s = 0;
        for (let f = 0; f < d; f++) {
          const x = (base ? base[before + f]! : 0) + g[r * d + f]! * scale;
          v[at + f] = x;
          s += x * x;
        }
        const norm = Math.sqrt(s);
        if (norm > epsilon) for (let f = 0; f < d; f++) v[at + f] = (v[at + f]! * epsilon) / norm;
      }
      return out;
    },
  };
}

/** The registered `example-pgd` adversary. */
export const pgd: Adversary = createPgd();

// Register once, even when the module is imported twice.
try {
  getAdversary(pgd.adversaryName);
} catch {
  registerAdversary(pgd);
}
