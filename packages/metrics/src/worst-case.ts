/**
 * Exact worst cases where the score is affine in a surface (MF's and VBPR's embeddings,
 * VBPR's prepared item features): under a norm bound `epsilon` per row, the guaranteed worst
 * ranking of every held-out item, and from it a lower bound on every ranking metric that no
 * perturbation of that size can go below. Not an estimate: a certificate.
 */
import type { Dataset, SampledTestSet } from '@advrec/data';
import { SparseRows, forwardPairs } from '@advrec/models';
import type { Model, PerturbableSurface } from '@advrec/models';
import { EvaluationError } from './errors.js';
import { means, prepare } from './evaluate.js';
import type { Prepared } from './evaluate.js';
import { planMetrics, throwIssues, userMetrics } from './metrics.js';
import { dotScore } from './scorer.js';
import type { MetricName } from './metrics.js';

/** Options of {@link worstCaseBounds}. */
export interface WorstCaseOptions {
  /** Norm bounds per row, in absolute units (as the adversaries take them). */
  readonly epsilons: readonly number[];
  /** Surfaces, each bounded alone (default: every surface the model declares `affine`). */
  readonly surfaces?: readonly string[];
  /**
   * The balls per row, each giving its own points (default `['l2']`): `l2` (FGM, PGD) and
   * `linf` (FGSM, `pgd-linf`). Scores and gradients are computed once for all of them.
   */
  readonly norms?: readonly ('l2' | 'linf')[];
  /** Split to evaluate (default test). */
  readonly split?: 'test' | 'validation';
  /** Cutoffs (default 10 and 20). */
  readonly cutoffs?: readonly number[];
  /** Metrics (default every cutoff metric). */
  readonly metrics?: readonly MetricName[];
  /**
   * Bound the sampled protocol on this test set (each case's positive among its negatives,
   * AMR's 999) instead of full ranking.
   */
  readonly testSet?: SampledTestSet;
  /** Users per `scoreAll` block (default 64; results do not depend on it). */
  readonly blockSize?: number;
}

/** One surface at one epsilon. */
export interface WorstCasePoint {
  readonly surface: string;
  readonly side: 'user' | 'item';
  readonly epsilon: number;
  readonly norm: 'l2' | 'linf';
  /**
   * `exact` (item-side surfaces): the worst case is reached, per evaluated user, by moving
   * every held-out item's row against the user's gradient and every other row along it.
   * `certified` (user-side surfaces): each competitor that could overtake a held-out item
   * under some perturbation of the user's row is counted as overtaking, so the metric is a
   * guaranteed lower bound (one perturbation of the row may not realise all at once).
   */
  readonly kind: 'exact' | 'certified';
  /** The worst (lowest) mean of each metric. */
  readonly metrics: Readonly<Record<string, number>>;
  /** `(worst - clean) / clean` per metric. */
  readonly relativeChange: Readonly<Record<string, number>>;
  /** The worst value of each metric per evaluated user (parallel to `users`). */
  readonly perUser: Readonly<Record<string, Float64Array>>;
}

/** The outcome of {@link worstCaseBounds}. */
export interface WorstCaseReport {
  /** The clean means (the same as full-ranking evaluation's, same tie rule). */
  readonly clean: Readonly<Record<string, number>>;
  readonly cleanPerUser: Readonly<Record<string, Float64Array>>;
  /** The evaluated users (dense ids; one per case for the sampled protocol). */
  readonly users: Int32Array;
  readonly points: readonly WorstCasePoint[];
  /**
   * Per surface: the mean over evaluated users (item side) or over items (user side) of the
   * dual norm (of the first ball in `norms`) of the score's gradient w.r.t. a row, i.e. how
   * far one unit of perturbation moves a score at most.
   */
  readonly sensitivity: Readonly<Record<string, number>>;
}

/**
 * Exact worst cases and certified bounds for every `affine` surface named (each alone), at
 * each epsilon, under the full-ranking protocol (or the sampled one with `testSet`) with the
 * evaluator's candidates, scores and tie rule (pessimistic; at epsilon 0 the figures are the
 * clean evaluation's).
 *
 * The score is affine in a row with a gradient that depends on the other side only:
 * - item side (`q_i`, VBPR's `c_i`): `s(u, i)` moves by `w_u . delta_i` with `w_u` the same
 *   for every item, so the worst case per user lowers each held-out item by
 *   `epsilon ||w_u||_*` and raises every other candidate by as much (`||.||_*` is the dual
 *   norm: L2 for the L2 ball, L1 for the L-infinity ball). Exact, and reached.
 * - user side (`p_u`): `s(u, i)` moves by `g_i . delta_u`; competitor `j` can overtake
 *   held-out `t` only if `s(u,t) - s(u,j) <= epsilon ||g_t - g_j||_*`. Counting every such `j`
 *   bounds the attacked position from above, so the metrics from these positions are a
 *   certified lower bound.
 *
 * @throws ConfigError for a surface that is unknown or not declared affine, or bad epsilons.
 */
export async function worstCaseBounds(
  model: Model,
  dataset: Dataset,
  options: WorstCaseOptions,
): Promise<WorstCaseReport> {
  const { norms, surfaces, blockSize } = checkOptions(model, options);
  const metricsOption = options.metrics ?? ['hr', 'recall', 'precision', 'ndcg', 'mrr', 'map'];
  const cutoffsOption = options.cutoffs ?? [10, 20];
  const testSet = options.testSet;
  const prepared = testSet
    ? null
    : prepare(model, dataset, {
        split: options.split ?? 'test',
        cutoffs: cutoffsOption,
        metrics: metricsOption,
      });
  const planIssues: { path: string; message: string }[] = [];
  const plan = prepared?.plan ?? planMetrics(metricsOption, cutoffsOption, planIssues);
  throwIssues(planIssues);
  const users = prepared ? prepared.users : Int32Array.from(testSet!.users);
  const epsilons = options.epsilons;
  const fresh = () => {
    const out: Record<string, Float64Array> = {};
    for (const key of plan.keys) out[key] = new Float64Array(users.length);
    return out;
  };
  const gradients = await Promise.all(surfaces.map((s) => rowGradients(model, s)));
  // One series per ball and surface (in that order), each a per-user table per epsilon.
  const series = norms.flatMap((norm) =>
    surfaces.map((surface, s) => ({
      norm,
      surface,
      gradient: gradients[s]!,
      perUser: epsilons.map(fresh),
    })),
  );
  const cleanPerUser = fresh();
  const isRelevant = new Uint8Array(dataset.numItems);
  /** Case `index` (user `u`): its candidates' scores in `row`, the held-out items `rel`. */
  const bound: CaseBound = (index, u, row, candidates, rel, numNegatives) => {
    for (const i of candidates)
      if (!Number.isFinite(row[i]!))
        throw new EvaluationError(
          `${dataset.name}: the model's score for user ${u}, item ${i} is ${row[i]} (not finite)`,
        );
    for (let r = 0; r < rel.length; r++) isRelevant[rel[r]!] = 1;
    // Clean positions (the evaluator's order: score, then non-relevant first, then item id).
    const cleanPositions = Array.from(rel, (t) => 1 + countAbove(row, candidates, isRelevant, t));
    userMetrics(plan, cleanPositions, numNegatives, cleanPerUser, index);
    for (const { norm, surface, gradient, perUser } of series) {
      const ratiosOf =
        surface.side === 'item'
          ? itemSideRatio(gradient.dualNorms(norm)[u]!)
          : userSideRatio(gradient, norm);
      const positions = Array.from(rel, (t) => {
        const ratios = Float64Array.from(
          candidates.filter((j) => j !== t),
          (j) => ratiosOf(row, t, j, isRelevant[j] === 1),
        ).sort();
        return epsilons.map((e) => 1 + upperCount(ratios, e));
      });
      epsilons.forEach((_, k) =>
        userMetrics(
          plan,
          positions.map((p) => p[k]!),
          numNegatives,
          perUser[k]!,
          index,
        ),
      );
    }
    for (let r = 0; r < rel.length; r++) isRelevant[rel[r]!] = 0;
  };
  if (testSet) forEachSampledCase(model, dataset, testSet, bound);
  else forEachRankedUser(model, dataset, prepared!, blockSize, bound);
  const clean = means(cleanPerUser);
  const points: WorstCasePoint[] = series.flatMap(({ norm, surface, perUser }) =>
    epsilons.map((epsilon, k) => {
      const metrics = means(perUser[k]!);
      const relativeChange: Record<string, number> = {};
      for (const key of Object.keys(clean))
        relativeChange[key] = (metrics[key]! - clean[key]!) / clean[key]!;
      return {
        surface: surface.name,
        side: surface.side,
        epsilon,
        norm,
        kind: surface.side === 'item' ? ('exact' as const) : ('certified' as const),
        metrics,
        relativeChange,
        perUser: perUser[k]!,
      };
    }),
  );
  const sensitivity: Record<string, number> = {};
  surfaces.forEach((surface, s) => {
    const dual = gradients[s]!.dualNorms(norms[0]!);
    let sum = 0;
    if (surface.side === 'item') for (const u of users) sum += dual[u]!;
    else for (const n of dual) sum += n;
    sensitivity[surface.name] = sum / (surface.side === 'item' ? users.length : dual.length);
  });
  return { clean, cleanPerUser, users: Int32Array.from(users), points, sensitivity };
}

/** Checks the options, reporting every problem with its path. */
function checkOptions(
  model: Model,
  options: WorstCaseOptions,
): { norms: readonly ('l2' | 'linf')[]; surfaces: PerturbableSurface[]; blockSize: number } {
  const issues: { path: string; message: string }[] = [];
  const norms = options.norms ?? ['l2'];
  if (norms.length === 0) issues.push({ path: 'norms', message: 'must name at least one ball' });
  norms.forEach((norm, k) => {
    if (norm !== 'l2' && norm !== 'linf')
      issues.push({
        path: `norms[${k}]`,
        message: `must be "l2" or "linf", got ${JSON.stringify(norm)}`,
      });
  });
  options.epsilons.forEach((e, k) => {
    if (!(Number.isFinite(e) && e >= 0))
      issues.push({ path: `epsilons[${k}]`, message: `must be a finite number >= 0, got ${e}` });
  });
  const names = options.surfaces ?? model.surfaces.filter((s) => s.affine).map((s) => s.name);
  const surfaces = names.map((name, k) => {
    const surface = model.surfaces.find((s) => s.name === name);
    if (!surface)
      issues.push({
        path: `surfaces[${k}]`,
        message: `model ${model.modelName} has no surface "${name}"; it has ${model.surfaces.map((s) => s.name).join(', ') || 'none'}`,
      });
    else if (!surface.affine)
      issues.push({
        path: `surfaces[${k}]`,
        message: `surface "${name}" of ${model.modelName} is not declared affine: no exact worst case (use an adversary)`,
      });
    return surface!;
  });
  const blockSize = options.blockSize ?? 64;
  if (!(Number.isInteger(blockSize) && blockSize >= 1))
    issues.push({ path: 'blockSize', message: `must be a positive integer, got ${blockSize}` });
  throwIssues(issues);
  return { norms, surfaces, blockSize };
}

type CaseBound = (
  index: number,
  u: number,
  row: Float64Array,
  candidates: readonly number[],
  rel: ArrayLike<number>,
  numNegatives: number,
) => void;

/** The evaluator's canonical scores: a factorized model's from its factors. */
function canonicalFactors(model: Model) {
  return model.factors?.() ?? null;
}

/** Sampled protocol: each case's positive among its negatives. */
function forEachSampledCase(
  model: Model,
  dataset: Dataset,
  testSet: SampledTestSet,
  bound: CaseBound,
): void {
  const factors = canonicalFactors(model);
  const n = testSet.negativesPerCase;
  const row = new Float64Array(dataset.numItems);
  for (let c = 0; c < testSet.numCases; c++) {
    const u = testSet.users[c]!;
    const items = [testSet.positives[c]!, ...testSet.negatives.subarray(c * n, (c + 1) * n)];
    const scores = factors
      ? items.map((i) => dotScore(factors, u, i))
      : Array.from(model.score(new Int32Array(items.length).fill(u), Int32Array.from(items)));
    items.forEach((i, t) => (row[i] = scores[t]!));
    bound(c, u, row, items, [items[0]!], n);
  }
}

/** Full ranking: every item but the excluded ones is a candidate, block by block of users. */
function forEachRankedUser(
  model: Model,
  dataset: Dataset,
  prepared: Prepared,
  blockSize: number,
  bound: CaseBound,
): void {
  const factors = canonicalFactors(model);
  const numItems = dataset.numItems;
  const { users, relevant, excludedIndices, excludedIndptr } = prepared;
  const isExcluded = new Uint8Array(numItems);
  for (let start = 0; start < users.length; start += blockSize) {
    const block = users.subarray(start, Math.min(users.length, start + blockSize));
    const scores = factors
      ? Float64Array.from({ length: block.length * numItems }, (_, k) =>
          dotScore(factors, block[Math.floor(k / numItems)]!, k % numItems),
        )
      : model.scoreAll(block, new Float64Array(block.length * numItems));
    for (let b = 0; b < block.length; b++) {
      const u = block[b]!;
      const excluded = excludedIndices.subarray(excludedIndptr[u]!, excludedIndptr[u + 1]!);
      for (const i of excluded) isExcluded[i] = 1;
      const candidates: number[] = [];
      for (let i = 0; i < numItems; i++) if (!isExcluded[i]) candidates.push(i);
      for (const i of excluded) isExcluded[i] = 0;
      const rel = relevant.row(u);
      bound(
        start + b,
        u,
        scores.subarray(b * numItems, (b + 1) * numItems),
        candidates,
        rel,
        candidates.length - rel.length,
      );
    }
  }
}

/** How many candidates rank before `t` in the evaluator's order. */
function countAbove(
  row: Float64Array,
  candidates: readonly number[],
  isRelevant: Uint8Array,
  t: number,
): number {
  const st = row[t]!;
  let above = 0;
  for (const j of candidates) {
    if (j === t) continue;
    const sj = row[j]!;
    if (isRelevant[j] ? sj > st || (sj === st && j < t) : sj >= st) above++;
  }
  return above;
}

/**
 * A competitor's threshold: the smallest epsilon at which it can rank at or above `t`
 * (`-Infinity`: already does; `Infinity`: never).
 */
type Ratio = (row: Float64Array, t: number, j: number, relevant: boolean) => number;

/** Item side: held-out items move down by `c`, every other candidate up by `c` (c per unit epsilon). */
function itemSideRatio(c: number): Ratio {
  return (row, t, j, relevant) => {
    const margin = row[t]! - row[j]!;
    // Another held-out item moves down as t does: their order is the clean one.
    if (relevant) return margin < 0 || (margin === 0 && j < t) ? -Infinity : Infinity;
    if (margin <= 0) return -Infinity;
    return c > 0 ? margin / (2 * c) : Infinity;
  };
}

/** User side: `j` can overtake `t` once `epsilon ||g_t - g_j||_* >= margin`. */
function userSideRatio(gradient: RowGradients, norm: 'l2' | 'linf'): Ratio {
  const d = gradient.dimension;
  const g = gradient.values;
  return (row, t, j, relevant) => {
    const margin = row[t]! - row[j]!;
    if (margin < 0 || (margin === 0 && (!relevant || j < t))) return -Infinity;
    let n = 0;
    for (let f = 0; f < d; f++) {
      const x = g[t * d + f]! - g[j * d + f]!;
      n = norm === 'l2' ? n + x * x : n + Math.abs(x);
    }
    if (norm === 'l2') n = Math.sqrt(n);
    return n > 0 ? margin / n : Infinity;
  };
}

/** How many of the sorted `ratios` are <= `epsilon`. */
function upperCount(ratios: Float64Array, epsilon: number): number {
  let lo = 0;
  let hi = ratios.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ratios[mid]! <= epsilon) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The score's gradient w.r.t. one row of an affine surface, one vector per row of the other
 * side: per user (`w_u`, item-side surface) or per item (`g_i`, user-side surface).
 */
interface RowGradients {
  readonly dimension: number;
  /** `count x dimension`, row-major, indexed by the other side's id. */
  readonly values: Float64Array;
  dualNorms(norm: 'l2' | 'linf'): Float64Array;
}

/**
 * Reads the gradients through the model's batch step: pairs that touch distinct rows of
 * the surface in one block (`(u_b, item b)` for an item-side surface), with `dScore = 1`,
 * so row `b`'s gradient is the vector of the pair's other side.
 */
async function rowGradients(model: Model, surface: PerturbableSurface): Promise<RowGradients> {
  const d = surface.dimension;
  const others = surface.side === 'item' ? model.numUsers : model.numItems;
  const rowsOfSurface = surface.side === 'item' ? model.numItems : model.numUsers;
  if (rowsOfSurface === 0)
    throw new EvaluationError(`surface ${surface.name} of ${model.modelName} has no rows`);
  const values = new Float64Array(others * d);
  const width = Math.min(rowsOfSurface, 4096);
  for (let start = 0; start < others; start += width) {
    const n = Math.min(width, others - start);
    const own = Int32Array.from({ length: n }, (_, b) => b);
    const other = Int32Array.from({ length: n }, (_, b) => start + b);
    const users = surface.side === 'item' ? other : own;
    const items = surface.side === 'item' ? own : other;
    const forward = await forwardPairs(model, users, items, n);
    const into = new Map<string, SparseRows>([[surface.name, new SparseRows(d, n)]]);
    await forward.backward(new Float64Array(n).fill(1), into, [surface.name]);
    const rows = into.get(surface.name)!;
    for (let b = 0; b < n; b++) {
      const at = rows.offsetOf(b);
      if (at >= 0) values.set(rows.values.subarray(at, at + d), (start + b) * d);
    }
  }
  const cache = new Map<string, Float64Array>();
  return {
    dimension: d,
    values,
    dualNorms(norm) {
      let out = cache.get(norm);
      if (!out) {
        out = new Float64Array(others);
        for (let r = 0; r < others; r++) {
          let s = 0;
          for (let f = r * d; f < (r + 1) * d; f++)
            s = norm === 'l2' ? s + values[f]! * values[f]! : s + Math.abs(values[f]!);
          out[r] = norm === 'l2' ? Math.sqrt(s) : s;
        }
        cache.set(norm, out);
      }
      return out;
    },
  };
}
