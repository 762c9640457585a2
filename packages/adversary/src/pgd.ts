/**
 * Projected gradient descent (PGD, Madry et al. 2018) as a built-in adversary: several
 * gradient steps, each taken at the previous step's perturbation, each followed by a
 * projection of every row back onto the epsilon ball (L2, the APR/AMR bound, or L-infinity).
 */
import { ConfigError } from '@advrec/data';
import type { Random } from '@advrec/data';
import { SparseRows } from '@advrec/models';
import { ADVERSARY_SPECIFICATION_VERSION, hasAdversary, registerAdversary } from './adversary.js';
import type { Adversary } from './adversary.js';

/** Options of {@link createPgd}. */
export interface PgdOptions {
  /** Gradient steps (default 5). */
  readonly steps?: number;
  /** Step size as a multiple of epsilon (default `2.5 / steps`, Madry et al.'s rule of thumb). */
  readonly stepSize?: number;
  /**
   * The ball, per row: `l2` (default; steps along `g / ||g||`, the APR/AMR bound) or `linf`
   * (steps along `sign(g)`, clipped to `[-epsilon, epsilon]`, as FGSM's ball).
   */
  readonly norm?: 'l2' | 'linf';
  /**
   * Start from a point drawn uniformly in the ball (from the seeded stream the caller gives,
   * so the result is the same for a seed) instead of zero (default false). The first step's
   * gradient is the one the caller computed, at the unperturbed point.
   */
  readonly randomStart?: boolean;
  /** Registered name (default `pgd`, or `pgd-linf` for the L-infinity ball). */
  readonly name?: string;
}

/** A uniform draw in the L2 ball of radius `epsilon` in `d` dimensions (into `out`). */
function uniformInL2Ball(random: Random, d: number, epsilon: number, out: Float64Array): void {
  let s = 0;
  do {
    s = 0;
    for (let f = 0; f < d; f++) {
      const z = random.nextGaussian();
      out[f] = z;
      s += z * z;
    }
  } while (s === 0);
  const radius = epsilon * Math.pow(random.nextFloat(), 1 / d);
  const scale = radius / Math.sqrt(s);
  for (let f = 0; f < d; f++) out[f] = out[f]! * scale;
}

/**
 * PGD: start at zero (or, with `randomStart`, at a uniform point of the ball), take `steps`
 * steps of `stepSize * epsilon` along the gradient's direction in the ball's geometry
 * (`g / ||g||` for L2, `sign(g)` for L-infinity), each from the previous step's point and
 * with the gradient at it, and after each step project every row back onto the ball. Its
 * settings are recorded in {@link Adversary.settings}. With one step of size 1 from zero it
 * is FGM (L2) or FGSM (L-infinity) exactly.
 */
export function createPgd(options: PgdOptions = {}): Adversary {
  const steps = options.steps ?? 5;
  const stepSize = options.stepSize ?? 2.5 / steps;
  const norm = options.norm ?? 'l2';
  const randomStart = options.randomStart ?? false;
  const name = options.name ?? (norm === 'l2' ? 'pgd' : 'pgd-linf');
  const issues = [];
  if (!(Number.isInteger(steps) && steps >= 1))
    issues.push({
      path: `adversaries.${name}.steps`,
      message: `must be an integer >= 1, got ${steps}`,
    });
  if (!(Number.isFinite(stepSize) && stepSize > 0))
    issues.push({
      path: `adversaries.${name}.stepSize`,
      message: `must be a number > 0, got ${stepSize}`,
    });
  if (norm !== 'l2' && norm !== 'linf')
    issues.push({
      path: `adversaries.${name}.norm`,
      message: `must be "l2" or "linf", got ${String(norm)}`,
    });
  if (issues.length > 0) throw new ConfigError(issues);
  const ball = norm === 'l2' ? 'L2 ball' : 'L-infinity ball';
  return {
    specificationVersion: ADVERSARY_SPECIFICATION_VERSION,
    adversaryName: name,
    description: `projected gradient descent: ${steps} steps of ${+stepSize.toFixed(3)} epsilon${randomStart ? ' from a random start' : ''}, projected onto the ${ball} of radius epsilon per row`,
    usesGradient: true,
    steps,
    norm,
    settings: { steps, stepSize, norm, randomStart },
    perturb(gradient, epsilon, context) {
      const d = gradient.dimension;
      const out = new SparseRows(d, gradient.size);
      const g = gradient.values;
      const norms = norm === 'l2' ? gradient.norms() : null;
      const previous = context.previous;
      const rows = gradient.rows;
      const start = new Float64Array(d);
      const size = stepSize * epsilon;
      for (let r = 0; r < gradient.size; r++) {
        const at = out.ensure(rows[r]!);
        const v = out.values;
        const before = previous ? previous.offsetOf(rows[r]!) : -1;
        const base = before >= 0 ? previous!.values : null;
        if (!base && randomStart && epsilon > 0) {
          if (norm === 'l2') uniformInL2Ball(context.random, d, epsilon, start);
          else
            for (let f = 0; f < d; f++) start[f] = (2 * context.random.nextFloat() - 1) * epsilon;
        } else start.fill(0);
        let s = 0;
        for (let f = 0; f < d; f++) {
          const gf = g[r * d + f]!;
          const direction =
            norms !== null ? (norms[r]! > 0 ? gf / norms[r]! : 0) : gf > 0 ? 1 : gf < 0 ? -1 : 0;
          let x = (base ? base[before + f]! : start[f]!) + size * direction;
          if (norm === 'linf') x = Math.max(-epsilon, Math.min(epsilon, x));
          v[at + f] = x;
          s += x * x;
        }
        if (norm === 'l2') {
          const length = Math.sqrt(s);
          if (length > epsilon)
            for (let f = 0; f < d; f++) v[at + f] = (v[at + f]! * epsilon) / length;
        }
      }
      return out;
    },
  };
}

/** The built-in `pgd`: 5 steps of 0.5 epsilon from zero, L2 ball per row (the APR/AMR bound). */
export const pgd: Adversary = createPgd();

/** The built-in `pgd-linf`: 5 steps of 0.5 epsilon along `sign(g)`, L-infinity ball per row. */
export const pgdLinf: Adversary = createPgd({ norm: 'linf' });

// Built-ins, unless another installed copy of this package registered its own first.
for (const a of [pgd, pgdLinf]) if (!hasAdversary(a.adversaryName)) registerAdversary(a);
