import { availableParallelism } from 'node:os';
import {
  checkAllocation,
  InteractionMatrix,
  type ConfigIssue,
  type Dataset,
  type SampledTestSet,
  type SplitProtocol,
} from '@advrec/data';
import { EvaluationError } from './errors.js';
import { makeRankingKernel } from './kernel.js';
import {
  planMetrics,
  throwIssues,
  userMetrics,
  type MetricName,
  type MetricPlan,
} from './metrics.js';
import { OnnxTopKScorer } from '@advrec/onnx';
import { dotScore, isFactorized, type Scorer, type ScoringFactors } from './scorer.js';
import {
  rankJobInWorkers,
  rankJobRange,
  shared,
  sharedInt32,
  type SharedRankingJob,
} from './worker-pool.js';

/** The tie rule every evaluation applies, stated in every result. */
export const TIE_RULE =
  'pessimistic: a relevant item is ranked below every candidate scoring >= it (non-relevant before relevant at equal scores, then item id)';

/**
 * Users per onnxruntime Gemm + TopK call. Small enough that a block's scores (128 x 40,981
 * float32 = 21 MB on Gowalla) stay in the caches between the Gemm that writes them and the
 * TopK that reads them: on Gowalla's 29,858 users this halved the graph's time against
 * blocks of 1,024 (1.13 s vs 2.2 s, 2 cores). Results do not depend on it.
 */
export const ONNX_BLOCK_USERS = 128;

/**
 * The first pass's list is maxCutoff + this many items: onnxruntime's TopK costs more than
 * linearly in k (Gowalla, 29,858 users, 2 cores: k = 21 / 52 / 148 took 0.83 / 1.1 / 2.1 s),
 * so every user first gets a short list, and only those it cannot certify a longer one.
 */
const FIRST_PASS_MARGIN = 8;

/** A first-pass block that sends more than this share of its users to pass 2 ends pass 1 there. */
const RETRY_SWITCH = 0.25;

/** Which computation ran: recorded in each result. */
export type EvaluationEngine = 'onnxruntime' | 'js-workers' | 'js' | 'score-all';

/** How a result was obtained: enough to state the protocol next to every number. */
export interface EvaluationProtocol {
  /** `full`: every item minus the excluded ones is a candidate; `sampled`: the positive among N fixed negatives. */
  readonly kind: 'full' | 'sampled';
  /** The split evaluated. */
  readonly split: 'test' | 'validation';
  /** `all items minus excluded` or `1 positive + N sampled negatives`. */
  readonly candidates: string;
  /** Splits whose items were removed from the candidates (full ranking). */
  readonly excluded: readonly ('train' | 'validation')[];
  /** Negatives per case and where they came from (sampled). */
  readonly negativesPerCase?: number;
  readonly negativeSource?: string;
  readonly tieRule: string;
  readonly cutoffs: readonly number[];
  readonly metrics: readonly MetricName[];
  /** Users (full) or cases (sampled) with a value for every metric. */
  readonly usersEvaluated: number;
  /** Users with nothing to evaluate in the split (no relevant item), left out of the means. */
  readonly usersWithoutRelevantItems: number;
  readonly dataset: string;
  readonly datasetSplit: SplitProtocol;
  readonly engine: EvaluationEngine;
  readonly threads: number;
  /**
   * onnxruntime engine: users whose float32 proposals could not be certified and were
   * ranked from an exact full row instead (0 for the other engines).
   */
  readonly exactFallbackUsers: number;
  /**
   * onnxruntime engine: users ranked from the second, longer list because their excluded
   * items could crowd the first, short one (most users of a trained model); 0 otherwise.
   */
  readonly secondPassUsers?: number;
}

/** Means, per-user values and coverage, with the protocol that produced them. */
export interface EvaluationResult {
  /** Mean over evaluated users (or cases) of each metric, keyed `ndcg@20`, `auc`... */
  readonly metrics: Readonly<Record<string, number>>;
  /** Per-user values, parallel to `users`: what significance tests need. */
  readonly perUser: Readonly<Record<string, Float64Array>>;
  /** The evaluated users (dense ids), one per case for the sampled protocol. */
  readonly users: Int32Array;
  /** Catalogue coverage at each cutoff: distinct items in all top-K lists / numItems. */
  readonly coverage: Readonly<Record<string, number>>;
  /** Top lists, `users.length x maxCutoff`, -1 padded (when `keepTopLists`). */
  readonly topLists?: Int32Array;
  readonly protocol: EvaluationProtocol;
  readonly seconds: number;
}

/** Options of {@link evaluateFullRanking}. */
export interface FullRankingOptions {
  /** Split to evaluate (default `test`). */
  readonly split?: 'test' | 'validation';
  /** Cutoffs K (default [10, 20]). */
  readonly cutoffs?: readonly number[];
  /** Metrics (default: every cutoff metric; add `auc` for AUC, which needs full ranks). */
  readonly metrics?: readonly MetricName[];
  /**
   * Splits whose items are not candidates. Default: train and validation when evaluating
   * test, train when evaluating validation. `[]` ranks training items too (as Cornac did
   * before 2023): for comparisons only, never for reported results.
   */
  readonly exclude?: readonly ('train' | 'validation')[];
  /**
   * Users per block (default {@link ONNX_BLOCK_USERS} for onnxruntime, 256 otherwise). Results
   * do not depend on it.
   */
  readonly blockSize?: number;
  /** Threads (default: all cores). Results do not depend on it. */
  readonly threads?: number;
  /** `auto` (default): onnxruntime when installed and the scorer is factorized, else JS. */
  readonly engine?: 'auto' | 'onnxruntime' | 'js';
  /** Keep the top lists in the result (default false). */
  readonly keepTopLists?: boolean;
  /** Evaluate only these users (dense ids); default every user with a relevant item. */
  readonly users?: Int32Array;
}

/** What {@link prepare} gathers. @internal */
export interface Prepared {
  readonly plan: MetricPlan;
  readonly relevant: InteractionMatrix;
  readonly excludedIndptr: Int32Array;
  readonly excludedIndices: Int32Array;
  readonly users: Int32Array;
  readonly usersWithoutRelevantItems: number;
  readonly split: 'test' | 'validation';
  readonly exclude: readonly ('train' | 'validation')[];
}

/** Checks the options and gathers what a full ranking needs (relevant and excluded rows, users). @internal */
export function prepare(scorer: Scorer, dataset: Dataset, options: FullRankingOptions): Prepared {
  const issues: ConfigIssue[] = [];
  const plan = planMetrics(options.metrics, options.cutoffs, issues);
  const split = options.split ?? 'test';
  if (split !== 'test' && split !== 'validation')
    issues.push({
      path: 'split',
      message: `must be "test" or "validation", got ${JSON.stringify(split)}`,
    });
  const exclude = [
    ...new Set(options.exclude ?? (split === 'test' ? ['train', 'validation'] : ['train'])),
  ] as ('train' | 'validation')[];
  exclude.forEach((name, index) => {
    if (name !== 'train' && name !== 'validation')
      issues.push({
        path: `exclude[${index}]`,
        message: `must be "train" or "validation", got ${JSON.stringify(name)}`,
      });
    if (name === split)
      issues.push({
        path: `exclude[${index}]`,
        message: `cannot exclude the evaluated split "${split}"`,
      });
  });
  if (
    options.blockSize !== undefined &&
    !(Number.isInteger(options.blockSize) && options.blockSize >= 1)
  ) {
    issues.push({
      path: 'blockSize',
      message: `must be a positive integer, got ${JSON.stringify(options.blockSize)}`,
    });
  }
  if (
    options.threads !== undefined &&
    !(Number.isInteger(options.threads) && options.threads >= 1)
  ) {
    issues.push({
      path: 'threads',
      message: `must be a positive integer, got ${JSON.stringify(options.threads)}`,
    });
  }
  if (options.engine !== undefined && !['auto', 'onnxruntime', 'js'].includes(options.engine)) {
    issues.push({
      path: 'engine',
      message: `must be "auto", "onnxruntime" or "js", got ${JSON.stringify(options.engine)}`,
    });
  }
  throwIssues(issues);
  if (scorer.numUsers !== dataset.numUsers || scorer.numItems !== dataset.numItems) {
    throw new EvaluationError(
      `the model scores ${scorer.numUsers} users x ${scorer.numItems} items, the data set has ${dataset.numUsers} x ${dataset.numItems}`,
    );
  }
  const relevantSplit = split === 'test' ? dataset.test : dataset.validation;
  if (relevantSplit === null)
    throw new EvaluationError(`${dataset.name}: the data set has no ${split} split`);
  const excludedMatrices = exclude
    .map((name) => (name === 'train' ? dataset.train : dataset.validation))
    .filter((m): m is InteractionMatrix => m !== null);
  const { indptr: excludedIndptr, indices: excludedIndices } =
    excludedMatrices.length === 0
      ? { indptr: new Int32Array(dataset.numUsers + 1), indices: new Int32Array(0) }
      : unionRows(dataset.numUsers, excludedMatrices);
  // Relevant items that are also excluded cannot be ranked: they are left out of the relevant set.
  const relevant = subtractRows(relevantSplit, excludedIndptr, excludedIndices);
  let users: Int32Array;
  if (options.users) {
    for (const u of options.users) {
      if (!(Number.isInteger(u) && u >= 0 && u < dataset.numUsers))
        throw new EvaluationError(`user ${u} is not a user of ${dataset.name}`);
    }
    users = Int32Array.from(options.users).filter((u) => relevant.degree(u) > 0);
  } else {
    const list: number[] = [];
    for (let u = 0; u < dataset.numUsers; u++) if (relevant.degree(u) > 0) list.push(u);
    users = Int32Array.from(list);
  }
  if (users.length === 0)
    throw new EvaluationError(
      `${dataset.name}: the ${split} split has no user with a relevant item to evaluate`,
    );
  const considered = options.users ? options.users.length : dataset.numUsers;
  return {
    plan,
    relevant,
    excludedIndptr,
    excludedIndices,
    users,
    usersWithoutRelevantItems: considered - users.length,
    split,
    exclude,
  };
}

/**
 * Full-ranking evaluation (the APR protocol, and Gowalla's with several test items per
 * user): for every user with a relevant item, every item except the excluded ones is a
 * candidate; relevant items get their pessimistic positions, metrics are computed per user
 * and averaged. Never materialises users x items: users are scored block by block and
 * the top K kept with a partial selection.
 *
 * Engines (the result says which ran, and all give identical numbers):
 * - `onnxruntime` (factorized scorers, onnxruntime-node installed, no AUC): a MatMul+TopK
 *   graph proposes `k = maxCutoff + max excluded per user` candidates in float32; they are
 *   re-scored exactly and re-ranked; a user whose top list could have been changed by
 *   float32 rounding (a certified error bound) is ranked exactly instead.
 * - `js-workers` / `js` (factorized scorers): exact scores over worker threads (or the main thread).
 * - `score-all` (any {@link Scorer}): `scoreAll` block by block on the main thread.
 *
 * @throws {@link EvaluationError} for a non-finite score (naming user and item), an empty
 * split, or mismatched sizes; `ConfigError` listing every bad option.
 */
export async function evaluateFullRanking(
  scorer: Scorer,
  dataset: Dataset,
  options: FullRankingOptions = {},
): Promise<EvaluationResult> {
  const started = performance.now();
  const prepared = prepare(scorer, dataset, options);
  const { plan, users } = prepared;
  const threads = options.threads ?? availableParallelism();
  const positionOffsets = new Int32Array(users.length + 1);
  for (let b = 0; b < users.length; b++)
    positionOffsets[b + 1] = positionOffsets[b]! + prepared.relevant.degree(users[b]!);
  checkAllocation(
    'cutoffs',
    `top-${plan.maxCutoff} lists of ${users.length} users`,
    users.length * plan.maxCutoff,
    4,
  );
  const top = sharedInt32(users.length * plan.maxCutoff);
  const positions = sharedInt32(positionOffsets[users.length]!);
  const candidates = sharedInt32(users.length);

  let engine: EvaluationEngine;
  let exactFallbackUsers = 0;
  let secondPassUsers = 0;
  if (isFactorized(scorer)) {
    const factors = scorer.factors();
    checkFactors(factors, dataset);
    const wantOnnx = options.engine !== 'js' && !plan.fullRanks;
    const onnxFallbacks = !wantOnnx
      ? null
      : await rankWithOnnx(
          factors,
          prepared,
          options,
          threads,
          top,
          positions,
          positionOffsets,
          candidates,
        );
    const onnxDone = onnxFallbacks !== null;
    exactFallbackUsers = onnxFallbacks?.exact ?? 0;
    secondPassUsers = onnxFallbacks?.secondPass ?? 0;
    if (options.engine === 'onnxruntime' && !onnxDone) {
      throw new EvaluationError(
        plan.fullRanks
          ? 'the onnxruntime engine cannot compute AUC (full ranks); use engine "js"'
          : 'engine "onnxruntime" was asked but onnxruntime-node is not installed',
      );
    }
    if (onnxDone) engine = 'onnxruntime';
    else {
      const job: SharedRankingJob = {
        users: shared(users),
        relevantIndptr: shared(prepared.relevant.indptr),
        relevantIndices: shared(prepared.relevant.indices),
        excludedIndptr: shared(prepared.excludedIndptr),
        excludedIndices: shared(prepared.excludedIndices),
        userFactors: shared(factors.userFactors),
        itemFactors: shared(factors.itemFactors),
        itemBias: factors.itemBias ? shared(factors.itemBias) : null,
        dimension: factors.dimension,
        numItems: dataset.numItems,
        maxCutoff: plan.maxCutoff,
        fullRanks: plan.fullRanks,
        top,
        positions,
        positionOffsets: shared(positionOffsets),
        candidates,
      };
      if (threads > 1) {
        await rankJobInWorkers(job, threads, options.blockSize ?? 256);
        engine = 'js-workers';
      } else {
        rankJobRange(job, 0, users.length);
        engine = 'js';
      }
    }
  } else {
    await rankWithScoreAll(
      scorer,
      dataset,
      prepared,
      options.blockSize ?? 256,
      top,
      positions,
      positionOffsets,
      candidates,
    );
    engine = 'score-all';
  }

  return summarise({
    prepared,
    dataset,
    top,
    positions,
    positionOffsets,
    candidates,
    keepTopLists: options.keepTopLists ?? false,
    protocol: {
      kind: 'full',
      split: prepared.split,
      candidates: 'all items minus excluded',
      excluded: prepared.exclude,
      tieRule: TIE_RULE,
      cutoffs: plan.cutoffs,
      metrics: plan.metrics,
      usersEvaluated: users.length,
      usersWithoutRelevantItems: prepared.usersWithoutRelevantItems,
      dataset: dataset.name,
      datasetSplit: dataset.protocol,
      engine,
      threads: engine === 'js' || engine === 'score-all' ? 1 : threads,
      exactFallbackUsers,
      ...(engine === 'onnxruntime' ? { secondPassUsers } : {}),
    },
    started,
  });
}

async function rankWithScoreAll(
  scorer: Scorer,
  dataset: Dataset,
  prepared: Prepared,
  blockSize: number,
  top: Int32Array,
  positions: Int32Array,
  positionOffsets: Int32Array,
  candidates: Int32Array,
): Promise<void> {
  const kernel = makeRankingKernel();
  const { users, plan, relevant } = prepared;
  const numItems = dataset.numItems;
  for (let start = 0; start < users.length; start += blockSize) {
    const block = users.subarray(start, Math.min(users.length, start + blockSize));
    const scores = await scorer.scoreAll(block, new Float64Array(block.length * numItems));
    if (scores.length !== block.length * numItems) {
      throw new EvaluationError(
        `scoreAll returned ${scores.length} scores for ${block.length} users x ${numItems} items`,
      );
    }
    for (let t = 0; t < block.length; t++) {
      const b = start + t;
      const u = block[t]!;
      candidates[b] = kernel.rankRow(
        {
          row: scores.subarray(t * numItems, (t + 1) * numItems),
          relevant: relevant.row(u),
          excluded: prepared.excludedIndices.subarray(
            prepared.excludedIndptr[u]!,
            prepared.excludedIndptr[u + 1]!,
          ),
          maxCutoff: plan.maxCutoff,
          fullRanks: plan.fullRanks,
        },
        { top, topOffset: b * plan.maxCutoff, positions, positionOffset: positionOffsets[b]! },
      );
      if (candidates[b]! < 0)
        throw nonFinite(dataset, u, -candidates[b]! - 1, scores[t * numItems - candidates[b]! - 1]);
    }
  }
}

/**
 * The onnxruntime path. Returns how many users were ranked exactly after all and how many
 * from the second pass's long list, or null (having done nothing) when onnxruntime-node is
 * missing.
 * Per user: the graph's top k (float32) minus excluded items, re-scored exactly, re-ranked;
 * accepted when the K-th exact score beats every item the graph left out by more than the
 * float32 error bound, else the user is ranked exactly from a full row.
 */
async function rankWithOnnx(
  factors: ScoringFactors,
  prepared: Prepared,
  options: FullRankingOptions,
  threads: number,
  top: Int32Array,
  positions: Int32Array,
  positionOffsets: Int32Array,
  candidates: Int32Array,
): Promise<{ exact: number; secondPass: number } | null> {
  const { users, plan } = prepared;
  const numItems = factors.itemFactors.length / factors.dimension;
  const dimension = factors.dimension;
  const onnx = await OnnxTopKScorer.create(
    { itemFactors: factors.itemFactors, itemBias: factors.itemBias, numItems, dimension },
    { threads },
  );
  if (onnx === null) return null;
  let fallbacks = 0;
  try {
    const blockSize = options.blockSize ?? ONNX_BLOCK_USERS;
    const tiers = onnxTiers(prepared, numItems);
    const firstK = Math.min(numItems, plan.maxCutoff + FIRST_PASS_MARGIN);
    const longestList = Math.min(numItems, Math.max(firstK, ...tiers.map((tier) => tier.k)));
    const user: OnnxUserRanking = {
      factors,
      prepared,
      numItems,
      errorBound: floatErrorBound(factors),
      kernel: makeRankingKernel(),
      row: new Float64Array(numItems),
      chosenItems: new Int32Array(longestList),
      chosenScores: new Float64Array(longestList),
      chosenRelevant: new Uint8Array(longestList),
      top,
      positions,
      positionOffsets,
      candidates,
      excludedMark: new Int32Array(numItems).fill(-1),
    };
    const buffer = new Float32Array(blockSize * dimension);
    const graphTopK = (members: readonly number[], k: number) => {
      members.forEach((b, t) => {
        const u = users[b]!;
        buffer.set(factors.userFactors.subarray(u * dimension, (u + 1) * dimension), t * dimension);
      });
      return onnx.topKWords(buffer.subarray(0, members.length * dimension), members.length, k);
    };
    // Pass 1, tiers by ascending k: every user with the first pass's short list. A user
    // whose list could not be certified (its excluded items crowded the list, or a near tie
    // at its end) waits for pass 2. A tier whose block sends more than RETRY_SWITCH of its
    // users to pass 2 (a trained model, whose training items score high) sends the rest of
    // it, and every heavier tier, straight to pass 2.
    const secondPass = new Map<number, number[]>();
    const defer = (k: number, b: number): void => {
      const waiting = secondPass.get(k);
      if (waiting) waiting.push(b);
      else secondPass.set(k, [b]);
    };
    let skipping = false;
    for (const tier of tiers) {
      const final = tier.k <= firstK;
      for (let start = 0; start < tier.members.length; start += blockSize) {
        const members = tier.members.slice(start, start + blockSize);
        if (skipping) {
          for (const b of members) defer(tier.k, b);
          continue;
        }
        const k = Math.min(tier.k, firstK);
        const { values, indexWords } = await graphTopK(members, k);
        let retried = 0;
        for (let t = 0; t < members.length; t++) {
          const outcome = rankOnnxUser(
            user,
            members[t]!,
            { values, indexWords, offset: t * k, k },
            !final,
          );
          if (outcome === 'exact') fallbacks++;
          else if (outcome === 'retry') {
            defer(tier.k, members[t]!);
            retried++;
          }
        }
        if (retried > RETRY_SWITCH * members.length) skipping = true;
      }
    }
    // Pass 2: the waiting users with their tier's k, which no excluded item can crowd.
    let secondPassUsers = 0;
    for (const [k, waiting] of [...secondPass.entries()].sort((x, y) => x[0] - y[0])) {
      secondPassUsers += waiting.length;
      for (let start = 0; start < waiting.length; start += blockSize) {
        const members = waiting.slice(start, start + blockSize);
        const { values, indexWords } = await graphTopK(members, k);
        for (let t = 0; t < members.length; t++)
          if (
            rankOnnxUser(user, members[t]!, { values, indexWords, offset: t * k, k }, false) ===
            'exact'
          )
            fallbacks++;
      }
    }
    return { exact: fallbacks, secondPass: secondPassUsers };
  } finally {
    await onnx.release();
  }
}

/**
 * Users in tiers by how many items they exclude: k = maxCutoff + the tier's bound (a power of
 * two >= the user's excluded count), so a user's excluded items can never crowd its top list
 * out, and light users do not pay for the heaviest one's k. Tiers by ascending k.
 */
function onnxTiers(prepared: Prepared, numItems: number): { k: number; members: number[] }[] {
  const { users, plan, excludedIndptr } = prepared;
  const tiers = new Map<number, number[]>();
  for (let b = 0; b < users.length; b++) {
    const u = users[b]!;
    const count = excludedIndptr[u + 1]! - excludedIndptr[u]!;
    const bound = Math.max(FIRST_PASS_MARGIN, 2 ** Math.ceil(Math.log2(Math.max(1, count))));
    const k = Math.min(numItems, plan.maxCutoff + bound);
    const tier = tiers.get(k);
    if (tier) tier.push(b);
    else tiers.set(k, [b]);
  }
  return [...tiers.entries()].sort((x, y) => x[0] - y[0]).map(([k, members]) => ({ k, members }));
}

/** What ranking one user from the graph's list needs: inputs, scratch and outputs. */
interface OnnxUserRanking {
  readonly factors: ScoringFactors;
  readonly prepared: Prepared;
  readonly numItems: number;
  readonly errorBound: (user: number) => number;
  readonly kernel: ReturnType<typeof makeRankingKernel>;
  readonly row: Float64Array;
  readonly chosenItems: Int32Array;
  readonly chosenScores: Float64Array;
  readonly chosenRelevant: Uint8Array;
  readonly top: Int32Array;
  readonly positions: Int32Array;
  readonly positionOffsets: Int32Array;
  readonly candidates: Int32Array;
  /** `excludedMark[item] === b` while batch user `b` is ranked: O(1) exclusion tests. */
  readonly excludedMark: Int32Array;
}

/**
 * Ranks batch user `b` from the graph's top k (`values` and `indexWords` from `offset`):
 * `ranked` from the list, `exact` from a full row when the list could not certify the top
 * list, or `retry` (nothing written) in that case when `mayRetry` (a longer list follows).
 */
function rankOnnxUser(
  ranking: OnnxUserRanking,
  b: number,
  list: { values: Float32Array; indexWords: Int32Array; offset: number; k: number },
  mayRetry: boolean,
): 'ranked' | 'exact' | 'retry' {
  const { factors, numItems, errorBound, kernel, row, chosenItems, chosenScores, chosenRelevant } =
    ranking;
  const { top, positions, positionOffsets, candidates } = ranking;
  const { users, plan, relevant, excludedIndptr, excludedIndices } = ranking.prepared;
  const { values, indexWords, k } = list;
  const maxCutoff = plan.maxCutoff;
  const dimension = factors.dimension;
  const complete = k === numItems; // the graph returns every item: nothing is left out
  const at0 = list.offset;
  const u = users[b]!;
  const userRelevant = relevant.row(u);
  const excluded = excludedIndices.subarray(excludedIndptr[u]!, excludedIndptr[u + 1]!);
  const delta = errorBound(u);
  const excludedMark = ranking.excludedMark;
  for (let e = 0; e < excluded.length; e++) excludedMark[excluded[e]!] = b;
  // Fast acceptance: every exact score is within delta of its float32 score, so when
  // the first maxCutoff candidates (excluded items skipped) are separated by more than
  // 2 delta from each other and from whatever comes next (the next candidate, or what
  // the graph left out), their float32 order is the exact order, without exact ties.
  let found = 0;
  let previous = Infinity;
  let separated = true;
  let c = 0;
  for (; c < k && found < maxCutoff; c++) {
    const item = indexWords[2 * (at0 + c)]!;
    if (excludedMark[item] === b) continue;
    const value = values[at0 + c]!;
    if (previous - value <= 2 * delta) separated = false;
    previous = value;
    chosenItems[found++] = item;
  }
  if (separated && found === maxCutoff) {
    let next = complete ? -Infinity : values[at0 + k - 1]!;
    for (; c < k; c++) {
      if (excludedMark[indexWords[2 * (at0 + c)]!] !== b) {
        next = values[at0 + c]!;
        break;
      }
    }
    if (previous - next > 2 * delta) {
      candidates[b] = numItems - excluded.length;
      const offset = positionOffsets[b]!;
      for (let r = 0; r < userRelevant.length; r++) positions[offset + r] = 0;
      for (let p = 0; p < maxCutoff; p++) {
        const item = chosenItems[p]!;
        top[b * maxCutoff + p] = item;
        const r = indexIn(userRelevant, item);
        if (r >= 0) positions[offset + r] = p + 1;
      }
      return 'ranked';
    }
  }
  // Otherwise re-score exactly. Walk the graph's list (float32, descending): skip excluded items; once maxCutoff
  // candidates are in, keep only those within 2 delta of the maxCutoff-th one: anything
  // lower is certainly below the exact top list.
  // Insertion into parallel arrays: the float32 order is nearly the exact order, so this
  // is about linear.
  let n = 0;
  let kthFloat = Infinity;
  for (let c = 0; c < k; c++) {
    const value = values[at0 + c]!;
    if (n >= maxCutoff && value < kthFloat - 2 * delta) break;
    const item = indexWords[2 * (at0 + c)]!;
    if (excludedMark[item] === b) continue;
    const score = dotScore(factors, u, item);
    const rel = indexIn(userRelevant, item) >= 0 ? 1 : 0;
    let at = n++;
    while (
      at > 0 &&
      before(score, rel, item, chosenScores[at - 1]!, chosenRelevant[at - 1]!, chosenItems[at - 1]!)
    ) {
      chosenScores[at] = chosenScores[at - 1]!;
      chosenRelevant[at] = chosenRelevant[at - 1]!;
      chosenItems[at] = chosenItems[at - 1]!;
      at--;
    }
    chosenScores[at] = score;
    chosenRelevant[at] = rel;
    chosenItems[at] = item;
    if (n === maxCutoff) kthFloat = value;
  }
  // Items the graph left out score at most values[k-1] in float32, values[k-1] + delta exactly.
  const certified =
    complete || (n >= maxCutoff && chosenScores[maxCutoff - 1]! > values[at0 + k - 1]! + delta);
  if (!certified && mayRetry) return 'retry';
  if (!certified) {
    kernel.scoreRow(
      row,
      u,
      factors.userFactors,
      factors.itemFactors,
      factors.itemBias ?? null,
      dimension,
      numItems,
    );
    candidates[b] = kernel.rankRow(
      { row, relevant: userRelevant, excluded, maxCutoff, fullRanks: false },
      { top, topOffset: b * maxCutoff, positions, positionOffset: positionOffsets[b]! },
    );
    return 'exact';
  }
  candidates[b] = numItems - excluded.length;
  const offset = positionOffsets[b]!;
  for (let r = 0; r < userRelevant.length; r++) positions[offset + r] = 0;
  for (let p = 0; p < maxCutoff; p++) {
    top[b * maxCutoff + p] = p < n ? chosenItems[p]! : -1;
    if (p < n && chosenRelevant[p])
      positions[offset + indexIn(userRelevant, chosenItems[p]!)] = p + 1;
  }
  return 'ranked';
}

/**
 * A bound on |float32 Gemm score - exact score| for user u: gamma_(K+2) * (|p_u| max|q_i| + max|bias|),
 * doubled for safety (any summation order, FMA or not).
 */
function floatErrorBound(factors: ScoringFactors): (u: number) => number {
  const { userFactors, itemFactors, dimension, itemBias } = factors;
  let maxItemNorm = 0;
  for (let i = 0; i < itemFactors.length / dimension; i++) {
    let s = 0;
    for (let f = 0; f < dimension; f++) s += itemFactors[i * dimension + f]! ** 2;
    maxItemNorm = Math.max(maxItemNorm, Math.sqrt(s));
  }
  let maxBias = 0;
  if (itemBias) for (const b of itemBias) maxBias = Math.max(maxBias, Math.abs(b));
  const unit = 2 ** -24;
  const gamma = ((dimension + 2) * unit) / (1 - (dimension + 2) * unit);
  return (u) => {
    let s = 0;
    for (let f = 0; f < dimension; f++) s += userFactors[u * dimension + f]! ** 2;
    return 2 * gamma * (Math.sqrt(s) * maxItemNorm + maxBias) + 1e-30;
  };
}

// The kernel's order and search, shared with the worker threads' copy of it.
const { before, indexOf: indexIn } = makeRankingKernel();

function binarySearch(sorted: Int32Array, value: number): boolean {
  return indexIn(sorted, value) >= 0;
}

function checkFactors(factors: ScoringFactors, dataset: Dataset): void {
  const { userFactors, itemFactors, dimension, itemBias } = factors;
  if (
    userFactors.length !== dataset.numUsers * dimension ||
    itemFactors.length !== dataset.numItems * dimension
  ) {
    throw new EvaluationError(
      `factor tables do not match ${dataset.numUsers} users x ${dataset.numItems} items at dimension ${dimension}`,
    );
  }
  const check = (values: Float32Array, what: string, width: number): void => {
    for (let k = 0; k < values.length; k++) {
      if (!Number.isFinite(values[k]!)) {
        const row = Math.floor(k / width);
        const id =
          what === 'user' ? dataset.userIdMap.toSource(row) : dataset.itemIdMap.toSource(row);
        throw new EvaluationError(
          `the model's ${what} ${id} (dense ${row}) has a non-finite factor ${values[k]}: its scores would be NaN`,
        );
      }
    }
  };
  check(userFactors, 'user', dimension);
  check(itemFactors, 'item', dimension);
  if (itemBias) check(itemBias, 'item', 1);
}

function nonFinite(
  dataset: Dataset,
  u: number,
  i: number,
  value: number | undefined,
): EvaluationError {
  return new EvaluationError(
    `the model scored user ${dataset.userIdMap.toSource(u)} x item ${dataset.itemIdMap.toSource(i)} as ${value}: scores must be finite`,
  );
}

interface SummaryInput {
  prepared: Prepared;
  dataset: Dataset;
  top: Int32Array;
  positions: Int32Array;
  positionOffsets: Int32Array;
  candidates: Int32Array;
  keepTopLists: boolean;
  protocol: EvaluationProtocol;
  started: number;
}

function summarise(input: SummaryInput): EvaluationResult {
  const { prepared, dataset, top, positions, positionOffsets, candidates } = input;
  const { plan, users } = prepared;
  const perUser: Record<string, Float64Array> = {};
  for (const key of plan.keys) perUser[key] = new Float64Array(users.length);
  for (let b = 0; b < users.length; b++) {
    const u = users[b]!;
    if (candidates[b]! < 0) {
      const item = -candidates[b]! - 1;
      throw nonFinite(dataset, u, item, undefined);
    }
    const userPositions = positions.subarray(positionOffsets[b]!, positionOffsets[b + 1]!);
    userMetrics(plan, userPositions, candidates[b]! - userPositions.length, perUser, b);
  }
  return {
    metrics: means(perUser),
    perUser,
    users: Int32Array.from(users),
    coverage: coverage(top, users.length, plan, dataset.numItems),
    ...(input.keepTopLists ? { topLists: Int32Array.from(top) } : {}),
    protocol: input.protocol,
    seconds: (performance.now() - input.started) / 1000,
  };
}

/** The mean of each metric's per-user values. @internal */
export function means(perUser: Record<string, Float64Array>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, values] of Object.entries(perUser)) {
    let sum = 0;
    for (const v of values) sum += v;
    out[key] = sum / values.length;
  }
  return out;
}

function coverage(
  top: Int32Array,
  rows: number,
  plan: MetricPlan,
  numItems: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  const seen = new Uint8Array(numItems);
  let distinct = 0;
  let done = 0;
  for (const cutoff of plan.cutoffs) {
    for (let p = done; p < cutoff; p++) {
      for (let b = 0; b < rows; b++) {
        const item = top[b * plan.maxCutoff + p]!;
        if (item >= 0 && !seen[item]) {
          seen[item] = 1;
          distinct++;
        }
      }
    }
    done = cutoff;
    out[`coverage@${cutoff}`] = distinct / numItems;
  }
  return out;
}

/** Sorted union of several CSR matrices' rows. */
function unionRows(
  numUsers: number,
  matrices: readonly InteractionMatrix[],
): { indptr: Int32Array; indices: Int32Array } {
  const indptr = new Int32Array(numUsers + 1);
  if (matrices.length === 1) return { indptr: matrices[0]!.indptr, indices: matrices[0]!.indices };
  const parts: number[] = [];
  for (let u = 0; u < numUsers; u++) {
    const merged = new Set<number>();
    for (const m of matrices) for (const i of m.row(u)) merged.add(i);
    const sorted = [...merged].sort((a, b) => a - b);
    for (const i of sorted) parts.push(i);
    indptr[u + 1] = parts.length;
  }
  return { indptr, indices: Int32Array.from(parts) };
}

function subtractRows(
  matrix: InteractionMatrix,
  exIndptr: Int32Array,
  exIndices: Int32Array,
): InteractionMatrix {
  let overlap = false;
  for (let u = 0; u < matrix.numUsers && !overlap; u++) {
    const excluded = exIndices.subarray(exIndptr[u]!, exIndptr[u + 1]!);
    for (const i of matrix.row(u)) if (binarySearch(excluded, i)) overlap = true;
  }
  if (!overlap) return matrix;
  const users: number[] = [];
  const items: number[] = [];
  for (let u = 0; u < matrix.numUsers; u++) {
    const excluded = exIndices.subarray(exIndptr[u]!, exIndptr[u + 1]!);
    for (const i of matrix.row(u)) {
      if (!binarySearch(excluded, i)) {
        users.push(u);
        items.push(i);
      }
    }
  }
  return InteractionMatrix.fromPairs(matrix.numUsers, matrix.numItems, users, items);
}

/** Options of {@link evaluateSampled}. */
export interface SampledOptions {
  readonly cutoffs?: readonly number[];
  readonly metrics?: readonly MetricName[];
  /** Which split the cases come from (default `test`), for the record. */
  readonly split?: 'test' | 'validation';
  /** Cases per `score` call (default 256). Results do not depend on it. */
  readonly blockSize?: number;
}

/**
 * Sampled-negative evaluation (AMR: 999 negatives; NCF: 99): each case's positive is
 * ranked among its N negatives only (pessimistic ties: rank = 1 + #negatives scoring >= it).
 * Per-case values are kept; AUC is the fraction of the case's negatives scored below the positive.
 */
export async function evaluateSampled(
  scorer: Scorer,
  dataset: Dataset,
  testSet: SampledTestSet,
  options: SampledOptions = {},
): Promise<EvaluationResult> {
  const started = performance.now();
  const issues: ConfigIssue[] = [];
  const plan = planMetrics(options.metrics, options.cutoffs, issues);
  const blockSize = options.blockSize ?? 256;
  if (!(Number.isInteger(blockSize) && blockSize >= 1))
    issues.push({
      path: 'blockSize',
      message: `must be a positive integer, got ${JSON.stringify(blockSize)}`,
    });
  throwIssues(issues);
  if (testSet.numCases === 0)
    throw new EvaluationError(`${testSet.source}: the sampled test set has no case`);
  if (scorer.numUsers !== dataset.numUsers || scorer.numItems !== dataset.numItems) {
    throw new EvaluationError(
      `the model scores ${scorer.numUsers} users x ${scorer.numItems} items, the data set has ${dataset.numUsers} x ${dataset.numItems}`,
    );
  }
  const n = testSet.negativesPerCase;
  const width = n + 1;
  const perUser: Record<string, Float64Array> = {};
  for (const key of plan.keys) perUser[key] = new Float64Array(testSet.numCases);
  checkAllocation(
    'cutoffs',
    `top-${plan.maxCutoff} lists of ${testSet.numCases} cases`,
    testSet.numCases * plan.maxCutoff,
    4,
  );
  const top = new Int32Array(testSet.numCases * plan.maxCutoff).fill(-1);
  // A factorized model's canonical scores come from its factors, fetched once (VBPR
  // projects every item's features there: once, not once per block).
  const factors = isFactorized(scorer) ? scorer.factors() : null;
  for (let start = 0; start < testSet.numCases; start += blockSize) {
    const cases = Math.min(blockSize, testSet.numCases - start);
    const users = new Int32Array(cases * width);
    const items = new Int32Array(cases * width);
    for (let c = 0; c < cases; c++) {
      const at = start + c;
      users.fill(testSet.users[at]!, c * width, (c + 1) * width);
      items[c * width] = testSet.positives[at]!;
      items.set(testSet.negatives.subarray(at * n, (at + 1) * n), c * width + 1);
    }
    const scores = factors
      ? Float64Array.from(users, (u, t) => dotScore(factors, u, items[t]!))
      : await scorer.score(users, items);
    if (scores.length !== users.length)
      throw new EvaluationError(`score returned ${scores.length} scores for ${users.length} pairs`);
    for (let c = 0; c < cases; c++) {
      const at = start + c;
      const base = c * width;
      for (let t = 0; t < width; t++) {
        if (!Number.isFinite(scores[base + t]!))
          throw nonFinite(dataset, users[base + t]!, items[base + t]!, scores[base + t]);
      }
      const positive = scores[base]!;
      let above = 0;
      for (let t = 1; t < width; t++) if (scores[base + t]! >= positive) above++;
      userMetrics(plan, [above + 1], n, perUser, at);
      // Top list of the case's candidates, same order as the full protocol.
      const order = Array.from({ length: width }, (_, t) => t).sort((a, b) => {
        const sa = scores[base + a]!;
        const sb = scores[base + b]!;
        if (sa !== sb) return sb - sa;
        if ((a === 0) !== (b === 0)) return a === 0 ? 1 : -1;
        return items[base + a]! - items[base + b]!;
      });
      for (let p = 0; p < Math.min(plan.maxCutoff, width); p++)
        top[at * plan.maxCutoff + p] = items[base + order[p]!]!;
    }
  }
  return {
    metrics: means(perUser),
    perUser,
    users: Int32Array.from(testSet.users),
    coverage: coverage(top, testSet.numCases, plan, dataset.numItems),
    protocol: {
      kind: 'sampled',
      split: options.split ?? 'test',
      candidates: `1 positive + ${n} sampled negatives`,
      excluded: [],
      negativesPerCase: n,
      negativeSource: testSet.source,
      tieRule: TIE_RULE,
      cutoffs: plan.cutoffs,
      metrics: plan.metrics,
      usersEvaluated: testSet.numCases,
      usersWithoutRelevantItems: 0,
      dataset: dataset.name,
      datasetSplit: dataset.protocol,
      engine: 'score-all',
      threads: 1,
      exactFallbackUsers: 0,
    },
    seconds: (performance.now() - started) / 1000,
  };
}
