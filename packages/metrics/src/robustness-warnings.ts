/**
 * Warnings that say what robustness figures mean, attached to every sweep: an "attack" that
 * raises the metric, adversaries compared at one epsilon though their balls differ, and a
 * visual part whose scores no longer depend on the features.
 */
import { hasAdversary, getAdversary } from '@advrec/adversary';
import type { PerturbableSurface } from '@advrec/models';
import type { RobustnessPoint, RobustnessReport } from './robustness.js';

/** What a warning is about. */
export type RobustnessWarningCode =
  'attack-raises-metric' | 'norms-differ' | 'visual-part-collapsed' | 'grid-edge';

/** One warning, in words a reader of the report understands without the code. */
export interface RobustnessWarning {
  readonly code: RobustnessWarningCode;
  readonly message: string;
}

/**
 * Below this relative change of the headline metric under the exact worst case of a
 * perturbation as large as a typical feature row (relative epsilon 1), the scores are taken
 * not to depend on the features.
 */
export const VISUAL_COLLAPSE_THRESHOLD = 0.01;

/**
 * A gradient attack that raises the headline metric by at least this much (relative) is
 * reported even when the rise is within the noise; a significant rise always is.
 */
export const RAISE_WARNING_MINIMUM = 0.01;

/** The metric warnings speak of: NDCG at the smallest cutoff, else the first metric. */
export function headlineMetric(keys: readonly string[]): string {
  const ndcg = keys
    .filter((k) => k.startsWith('ndcg@'))
    .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  return ndcg[0] ?? keys[0] ?? 'ndcg@10';
}

const percent = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;

/** The warnings of a sweep (see {@link RobustnessWarningCode}). */
export function robustnessWarnings(
  report: Pick<RobustnessReport, 'clean' | 'surfaces'> & {
    readonly points: readonly Pick<
      RobustnessPoint,
      'adversary' | 'norm' | 'attack' | 'epsilon' | 'relativeChange' | 'intervals'
    >[];
  },
  context: {
    /** The attacked model (any model with surfaces: pairwise or sequential). */
    readonly model: { readonly surfaces: readonly PerturbableSurface[] };
    /** Exact change of each feature surface's headline metric at relative epsilon 1. */
    readonly featureReach?: Readonly<Record<string, number>>;
    /** The metric to speak of (default {@link headlineMetric} of the clean metrics). */
    readonly headlineMetric?: string;
  },
): RobustnessWarning[] {
  const warnings: RobustnessWarning[] = [];
  const key =
    context.headlineMetric !== undefined && context.headlineMetric in report.clean
      ? context.headlineMetric
      : headlineMetric(Object.keys(report.clean));
  const groups = new Map<string, string[]>();
  for (const p of report.points) {
    const change = p.relativeChange[key];
    const interval = p.intervals[key];
    if (change === undefined || !(change > 0)) continue;
    const gradient = hasAdversary(p.adversary) ? getAdversary(p.adversary).usesGradient : true;
    // A rise within the noise is news only for a gradient attack of some size; beyond the
    // noise it is news for any perturbation.
    const significant = interval !== undefined && !interval.coversZero;
    if (!significant && (!gradient || change < RAISE_WARNING_MINIMUM)) continue;
    const name = `${p.adversary} (${p.attack === 'evaluation' ? 'evaluation-side' : 'training-loss'})`;
    const list = groups.get(name) ?? [];
    list.push(
      `epsilon ${p.epsilon}: ${percent(change)}${interval ? ` [${percent(interval.low)}, ${percent(interval.high)}]${interval.coversZero ? ', within noise' : ''}` : ''}`,
    );
    groups.set(name, list);
  }
  for (const [name, list] of groups)
    warnings.push({
      code: 'attack-raises-metric',
      message: `${name} raised ${key} instead of lowering it (${list.join('; ')}). The papers' perturbation raises the BPR loss on training pairs; on the held-out items it is not the worst case, and here it is no attack at all. Read the evaluation-side attack and the exact worst case instead.`,
    });
  const norms = new Map<'l2' | 'linf', Set<string>>();
  for (const p of report.points) {
    const set = norms.get(p.norm) ?? new Set<string>();
    set.add(p.adversary);
    norms.set(p.norm, set);
  }
  if (norms.size > 1) {
    const d = Math.max(
      ...report.surfaces.map(
        (s) => context.model.surfaces.find((x) => x.name === s)?.dimension ?? 0,
      ),
    );
    warnings.push({
      code: 'norms-differ',
      message: `${[...norms.get('linf')!].join(', ')} (L-infinity ball) and ${[...norms.get('l2')!].join(', ')} (L2 ball) are compared at the same epsilon, but an L-infinity perturbation of size epsilon has an L2 norm up to epsilon x sqrt(d) (${Math.sqrt(d).toFixed(1)} x at d = ${d}): the columns are not equal budgets. Compare the L-infinity adversaries at epsilon / sqrt(d).`,
    });
  }
  for (const [surface, reach] of Object.entries(context.featureReach ?? {}))
    if (Math.abs(reach) < VISUAL_COLLAPSE_THRESHOLD)
      warnings.push({
        code: 'visual-part-collapsed',
        message: `Even the worst perturbation of every item's ${surface} as large as a typical row (relative epsilon 1) moves ${key} by ${percent(reach)} at most: the scores hardly depend on the features (the visual part has collapsed, and a VBPR/AMR model has become MF-BPR), so robustness to feature attacks here says nothing about a robust visual part.`,
      });
  return warnings;
}
