import type { Random } from '@advrec/data';
import { ConfigError, didYouMean, firstNonFinite, globalRegistry } from '@advrec/data';
import { SparseRows } from '@advrec/models';
import type { PerturbableSurface } from '@advrec/models';

/** The version of the Adversary contract implemented by this package. */
export const ADVERSARY_SPECIFICATION_VERSION = 'v1';

/** What an adversary knows besides the gradient. */
export interface PerturbContext {
  /** The surface being perturbed (its name, side and row dimension). */
  readonly surface: PerturbableSurface;
  /** A seeded stream, for adversaries that draw random numbers. */
  readonly random: Random;
  /**
   * For multi-step adversaries ({@link Adversary.steps} > 1): the 0-based step, and from
   * step 1 on the perturbation this adversary returned at the previous step (for the same
   * surface; look its rows up with `previous.offsetOf(row)`). The gradient of a later step
   * is taken at the parameters plus that previous perturbation.
   */
  readonly step?: number;
  readonly previous?: SparseRows;
}

/**
 * The Adversary contract: given the gradient of the loss w.r.t. some rows of a surface
 * (`Gamma` in APR Eq. 3 and 8, summed over the mini-batch), return a perturbation for
 * those rows whose norm is at most `epsilon` per row (APR footnote 1). Used in training
 * (APR, AMR) and in attacks (robustness sweeps).
 */
export interface Adversary {
  readonly specificationVersion: typeof ADVERSARY_SPECIFICATION_VERSION;
  /** Registered name (`fgm`, `fgsm`, `random`, `none`, `pgd`, `pgd-linf`, or a plugin's). */
  readonly adversaryName: string;
  readonly description: string;
  /**
   * Whether the perturbation depends on the gradient. When false (random noise, none),
   * trainers may skip computing the gradient.
   */
  readonly usesGradient: boolean;
  /**
   * Gradient evaluations per perturbation (default 1: FGM, FGSM). An iterative adversary
   * (PGD: several FGM steps projected back onto the epsilon ball) sets more; the trainer's
   * generic engine and {@link craftPerturbation} then call {@link Adversary.perturb} once per
   * step with the gradient at the previous step's perturbation (`context.previous`).
   */
  readonly steps?: number;
  /**
   * The adversary's own settings (PGD: its steps, step size, ball and start), recorded beside
   * every figure it produced (robustness points, run configs), so a result says which variant
   * ran.
   */
  readonly settings?: Readonly<Record<string, number | string | boolean>>;
  /**
   * The ball its perturbations stay in, per row (default `l2`: FGM, random noise, PGD);
   * `linf` for sign attacks (FGSM, `pgd-linf`), whose L2 norm per row reaches
   * `epsilon * sqrt(d)`. Reports use it to compare budgets and pick the matching exact bound.
   */
  readonly norm?: 'l2' | 'linf';
  /** The perturbation of `gradient`'s rows, in the same row order. */
  perturb(gradient: SparseRows, epsilon: number, context: PerturbContext): SparseRows;
}

/**
 * Runs an adversary for its {@link Adversary.steps}: step 0 perturbs `gradients`; each later
 * step perturbs `gradientAt(previous perturbations)`, the gradient at the perturbed point
 * (which may be computed asynchronously, by a model's batch step). Returns the last step's
 * perturbation per surface.
 */
export async function perturbSteps(
  adversary: Adversary,
  epsilon: number,
  surfaces: readonly PerturbableSurface[],
  random: Random,
  gradients: Map<string, SparseRows>,
  gradientAt: (
    perturbations: Map<string, SparseRows>,
  ) => Map<string, SparseRows> | Promise<Map<string, SparseRows>>,
): Promise<Map<string, SparseRows>> {
  const steps = adversary.steps ?? 1;
  if (!(Number.isInteger(steps) && steps >= 1))
    throw new ConfigError([
      {
        path: `adversaries.${adversary.adversaryName}.steps`,
        message: `must be an integer >= 1, got ${steps}`,
      },
    ]);
  let perturbations = new Map<string, SparseRows>();
  let current = gradients;
  for (let step = 0; step < steps; step++) {
    if (step > 0) current = await gradientAt(perturbations);
    const next = new Map<string, SparseRows>();
    for (const surface of surfaces) {
      const gradient = current.get(surface.name) ?? new SparseRows(surface.dimension);
      const g = gradient.values;
      const bad = firstNonFinite(g);
      if (bad >= 0)
        throw new ConfigError([
          {
            path: `adversaries.${adversary.adversaryName}`,
            message: `the gradient given to adversary ${adversary.adversaryName} on surface ${surface.name} is ${g[bad]} at row ${gradient.rows[Math.floor(bad / gradient.dimension)]} (the model's loss is not finite: lower the learning rate or check the inputs)`,
          },
        ]);
      const previous = perturbations.get(surface.name);
      next.set(
        surface.name,
        checkedPerturbation(
          adversary,
          surface,
          gradient,
          callPerturb(adversary, surface, () =>
            adversary.perturb(gradient, epsilon, {
              surface,
              random,
              step,
              ...(previous ? { previous } : {}),
            }),
          ),
        ),
      );
    }
    perturbations = next;
  }
  return perturbations;
}

/** Runs a (possibly plugin) adversary's `perturb`; what it throws is reported naming it. */
function callPerturb(
  adversary: Adversary,
  surface: PerturbableSurface,
  perturb: () => SparseRows,
): SparseRows {
  try {
    return perturb();
  } catch (error) {
    if (ConfigError.isInstance(error)) throw error;
    throw new ConfigError([
      {
        path: `adversaries.${adversary.adversaryName}`,
        message: `adversary ${adversary.adversaryName} threw in perturb (surface ${surface.name}): ${(error as Error)?.message ?? String(error)}`,
      },
    ]);
  }
}

/**
 * The adversary's answer, checked: one row per gradient row, the surface's dimension, and
 * finite values; a plugin that breaks this is named in the error.
 */
function checkedPerturbation(
  adversary: Adversary,
  surface: PerturbableSurface,
  gradient: SparseRows,
  delta: SparseRows,
): SparseRows {
  const fail = (message: string): never => {
    throw new ConfigError([
      {
        path: `adversaries.${adversary.adversaryName}`,
        message: `${message} (surface ${surface.name})`,
      },
    ]);
  };
  if (typeof (delta as Partial<SparseRows> | undefined)?.offsetOf !== 'function')
    fail(`adversary ${adversary.adversaryName}: perturb must return SparseRows`);
  if (delta.dimension !== surface.dimension)
    fail(
      `adversary ${adversary.adversaryName} returned rows of dimension ${delta.dimension}, the surface has ${surface.dimension}`,
    );
  if (delta.size !== gradient.size)
    fail(
      `adversary ${adversary.adversaryName} returned ${delta.size} rows for a gradient of ${gradient.size}`,
    );
  const rows = delta.rows;
  const expected = gradient.rows;
  for (let r = 0; r < rows.length; r++)
    if (rows[r] !== expected[r])
      fail(
        `adversary ${adversary.adversaryName} returned row ${rows[r]} where the gradient has row ${expected[r]} (perturb must answer the gradient's rows, in order)`,
      );
  const v = delta.values;
  const x = firstNonFinite(v);
  if (x >= 0)
    fail(
      `adversary ${adversary.adversaryName} returned ${v[x]} at row ${delta.rows[Math.floor(x / delta.dimension)]}, feature ${x % delta.dimension}`,
    );
  return delta;
}

function copyRows(gradient: SparseRows): SparseRows {
  const out = new SparseRows(gradient.dimension, gradient.size);
  for (const row of gradient.rows) out.ensure(row);
  return out;
}

/**
 * Fast gradient method (APR Eq. 3 and 8): `Delta = epsilon * Gamma / ||Gamma||` per row.
 * A row with a zero gradient gets a zero perturbation (as `tf.nn.l2_normalize`).
 */
export const fgm: Adversary = {
  specificationVersion: ADVERSARY_SPECIFICATION_VERSION,
  adversaryName: 'fgm',
  description: 'fast gradient method: epsilon * g / ||g|| per row (APR, AMR)',
  usesGradient: true,
  perturb(gradient, epsilon) {
    const out = copyRows(gradient);
    const d = gradient.dimension;
    const g = gradient.values;
    const v = out.values;
    const norms = gradient.norms();
    for (let r = 0; r < gradient.size; r++) {
      const n = norms[r]!;
      if (n === 0) continue;
      const scale = epsilon / n;
      for (let f = r * d; f < (r + 1) * d; f++) v[f] = g[f]! * scale;
    }
    return out;
  },
};

/**
 * Fast gradient sign method (Goodfellow et al.): `Delta = epsilon * sign(Gamma)`, an
 * L-infinity ball of radius epsilon (its L2 norm per row is up to `epsilon * sqrt(d)`).
 */
export const fgsm: Adversary = {
  specificationVersion: ADVERSARY_SPECIFICATION_VERSION,
  adversaryName: 'fgsm',
  description: 'fast gradient sign method: epsilon * sign(g) (L-infinity ball)',
  usesGradient: true,
  norm: 'linf',
  perturb(gradient, epsilon) {
    const out = copyRows(gradient);
    const g = gradient.values;
    const v = out.values;
    for (let f = 0; f < g.length; f++) v[f] = g[f]! > 0 ? epsilon : g[f]! < 0 ? -epsilon : 0;
    return out;
  },
};

/**
 * Random noise (APR section 2.3's baseline): per row, a direction uniform on the sphere
 * (a normalised Gaussian vector) of norm epsilon.
 */
export const randomNoise: Adversary = {
  specificationVersion: ADVERSARY_SPECIFICATION_VERSION,
  adversaryName: 'random',
  description: "random direction of norm epsilon per row (the papers' baseline)",
  usesGradient: false,
  perturb(gradient, epsilon, context) {
    const out = copyRows(gradient);
    const d = gradient.dimension;
    const v = out.values;
    for (let r = 0; r < gradient.size; r++) {
      let s = 0;
      do {
        s = 0;
        for (let f = r * d; f < (r + 1) * d; f++) {
          const z = context.random.nextGaussian();
          v[f] = z;
          s += z * z;
        }
      } while (s === 0);
      const scale = epsilon / Math.sqrt(s);
      for (let f = r * d; f < (r + 1) * d; f++) v[f] = v[f]! * scale;
    }
    return out;
  },
};

/** No perturbation (zero rows): APR with it is BPR plus lambda times BPR again. */
export const noAdversary: Adversary = {
  specificationVersion: ADVERSARY_SPECIFICATION_VERSION,
  adversaryName: 'none',
  description: 'no perturbation',
  usesGradient: false,
  perturb(gradient) {
    return copyRows(gradient);
  },
};

/** Shared by every installed copy of this package (`Symbol.for('advrec.registry.adversary')`). */
const registry = globalRegistry<Adversary>('adversary');

/** Registers an adversary under its name (a different one under a taken name throws). */
export function registerAdversary(adversary: Adversary): void {
  if (adversary.specificationVersion !== ADVERSARY_SPECIFICATION_VERSION)
    throw new ConfigError([
      {
        path: `adversaries.${adversary.adversaryName}.specificationVersion`,
        message: `unsupported ${String(adversary.specificationVersion)}, this advrec implements ${ADVERSARY_SPECIFICATION_VERSION}`,
      },
    ]);
  const existing = registry.get(adversary.adversaryName);
  if (existing && existing !== adversary)
    throw new ConfigError([
      {
        path: 'adversary',
        message: `an adversary named "${adversary.adversaryName}" is already registered`,
      },
    ]);
  registry.set(adversary.adversaryName, adversary);
}

/** The adversary registered under `name`; the error lists what is registered. */
export function getAdversary(name: string): Adversary {
  const adversary = registry.get(name);
  if (!adversary)
    throw new ConfigError([
      {
        path: 'adversary',
        message: `unknown adversary "${name}"${didYouMean(name, registry.keys())}; registered: ${[...registry.keys()].sort().join(', ')}`,
      },
    ]);
  return adversary;
}

/** Whether an adversary is registered under `name`. */
export function hasAdversary(name: string): boolean {
  return registry.has(name);
}

/** Names and descriptions of the registered adversaries. */
export function listAdversaries(): { adversaryName: string; description: string }[] {
  return [...registry.values()].map((a) => ({
    adversaryName: a.adversaryName,
    description: a.description,
  }));
}

// Built-ins, unless another installed copy of this package registered its own first.
for (const a of [fgm, fgsm, randomNoise, noAdversary])
  if (!registry.has(a.adversaryName)) registerAdversary(a);
