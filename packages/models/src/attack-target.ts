/**
 * Epsilon relative to a surface, resolved once: the training schedule, the CLI's `train`,
 * `attack` and robustness sweeps, the recipes and the benchmarks all ask this function which
 * surfaces an adversary perturbs and in what unit its epsilon is given.
 */
import type { Model } from './model.js';

/** The surfaces an adversary perturbs and the unit of its epsilon. */
export interface AttackTarget {
  /** The surfaces to perturb; `undefined`: every surface of the model (the library default). */
  readonly surfaces: readonly string[] | undefined;
  /**
   * What one unit of the configured epsilon is in absolute terms: 1 for absolute epsilons,
   * else the surface's {@link PerturbableSurface.rowScale} (an epsilon of 0.1 on VBPR's
   * features is a tenth of their mean row norm).
   */
  readonly unit: number;
  /** Whether epsilon is relative to the surface (`unit` is its row scale). */
  readonly relative: boolean;
}

/**
 * The AMR convention, one rule for every caller: with surfaces named, those, and epsilon is
 * absolute; with none named, a model whose surfaces declare a {@link PerturbableSurface.rowScale}
 * (VBPR's item features) is perturbed on those surfaces only (AMR), with epsilon relative to
 * that scale; any other model on every surface with an absolute epsilon (APR).
 */
export function resolveAttackTarget(
  model: Model,
  surfaces?: readonly string[] | null,
): AttackTarget {
  if (surfaces !== undefined && surfaces !== null) return { surfaces, unit: 1, relative: false };
  const scaled = model.surfaces.filter(
    (s) => s.rowScale !== undefined && Number.isFinite(s.rowScale) && s.rowScale > 0,
  );
  if (scaled.length === 0) return { surfaces: undefined, unit: 1, relative: false };
  // Several scaled surfaces would need one unit each; the first one's is used (one today).
  return { surfaces: scaled.map((s) => s.name), unit: scaled[0]!.rowScale!, relative: true };
}

/** `epsilon` in absolute terms for `target` (see {@link resolveAttackTarget}). */
export function absoluteEpsilon(target: AttackTarget, epsilon: number): number {
  return epsilon * target.unit;
}
