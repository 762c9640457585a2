import {
  DataError,
  IdMap,
  InteractionMatrix,
  deriveSeed,
  padHistory,
  sampleSequenceCandidates,
} from '@advrec/data';
import type { Dataset, SampledTestSet, SequenceSplit } from '@advrec/data';
import { evaluateFullRanking, evaluateSampled, factorizedScorer } from '@advrec/metrics';
import type { EvaluationResult, FactorizedScorer, MetricName } from '@advrec/metrics';
import { SEQUENCE_ITEM_TABLE } from '@advrec/models';
import type { SequentialModel, Tfjs } from '@advrec/models';
import { checkItems, encodeSequences, tableOf } from './sequence-pass.js';

/**
 * Evaluation of sequential models through the metrics package's evaluators: a user's
 * state after its history (the model's hidden state at the last position) is its "user
 * factor", and the item table the item factors, so SASRec's sampled protocol is
 * `evaluateSampled` and RecBole's full ranking `evaluateFullRanking`, with every metric, the
 * per-user values for paired tests, coverage and the protocol record of the pairwise models.
 */

/** Candidates for SASRec's sampled evaluation of one split. */
export interface SequenceEvaluationSet {
  /** Users evaluated. */
  readonly users: Int32Array;
  /** Each evaluated user's history (input), oldest first. */
  readonly histories: readonly Int32Array[];
  /** `users.length x width`: the target first, then the negatives. */
  readonly candidates: Int32Array;
  readonly width: number;
}

/**
 * SASRec's evaluation sets: validation (history = training items, target = validation item)
 * and test (history = training items + validation item, target = test item), each target
 * ranked among `negatives` items (default 100) the user never interacted with.
 */
export function sequenceCandidates(
  split: SequenceSplit,
  which: 'validation' | 'test',
  options: { readonly negatives?: number; readonly seed?: number } = {},
): SequenceEvaluationSet {
  const negatives = options.negatives ?? 100;
  const targets = which === 'test' ? split.test : split.validation;
  const whole = split.train.map((seq, u) => {
    const all = Array.from(seq);
    if (split.validation[u]! >= 0) all.push(split.validation[u]!);
    if (split.test[u]! >= 0) all.push(split.test[u]!);
    return all;
  });
  // A user with nothing left to sample is named by its id in the file.
  whole.forEach((seq, u) => {
    if (targets[u]! >= 0 && new Set(seq).size >= split.numItems)
      throw new DataError(
        `${split.source}: user ${split.userIdMap?.toSource(u) ?? u} has interacted with every one of the ${split.numItems} items: no negatives to sample for its ${which} target`,
      );
  });
  const all = sampleSequenceCandidates(
    targets,
    whole,
    split.numItems,
    negatives,
    deriveSeed(options.seed ?? 0, which === 'test' ? 1 : 2),
  );
  const width = negatives + 1;
  const users: number[] = [];
  for (let u = 0; u < split.numUsers; u++) if (targets[u]! >= 0) users.push(u);
  const candidates = new Int32Array(users.length * width);
  const histories = users.map((u, k) => {
    candidates.set(all.subarray(u * width, (u + 1) * width), k * width);
    const train = split.train[u]!;
    if (which === 'validation') return train;
    const history = new Int32Array(train.length + 1);
    history.set(train);
    history[train.length] = split.validation[u]!;
    return history;
  });
  return { users: Int32Array.from(users), histories, candidates, width };
}

/**
 * The hidden state after each history (`histories.length x dimension`): the model's
 * output at the last position of the history cut to `maxLength`, no dropout, the item table
 * perturbed when `perturbation` (`numItems x dimension`) is given. Histories are encoded in
 * blocks of similar length (each block cut to its longest history).
 */
export function sequenceStates(
  tf: Tfjs,
  model: SequentialModel,
  histories: readonly Int32Array[],
  options: {
    readonly perturbation?: Float32Array;
    readonly blockSize?: number;
    /** Names the sequences in errors (default `sequence k`). */
    readonly nameOf?: (k: number) => string;
  } = {},
): Float32Array {
  const blockSize = options.blockSize ?? 256;
  const d = model.dimension;
  const n = histories.length;
  const states = new Float32Array(n * d);
  const order = Array.from({ length: n }, (_, k) => k).sort(
    (a, b) => histories[a]!.length - histories[b]!.length,
  );
  for (let start = 0; start < n; start += blockSize) {
    const block = order.slice(start, start + blockSize);
    const length = Math.max(
      1,
      ...block.map((k) => Math.min(histories[k]!.length, model.maxLength)),
    );
    const inputs = new Int32Array(block.length * length);
    block.forEach((k, r) => {
      const history = histories[k]!;
      if (history.length === 0)
        throw new DataError(
          `${options.nameOf?.(k) ?? `sequence ${k}`} has no history to predict the next item from`,
        );
      inputs.set(padHistory(history, length), r * length);
    });
    const hidden = encodeSequences(tf, model, inputs, block.length, length, {
      ...(options.perturbation ? { perturbation: options.perturbation } : {}),
    });
    block.forEach((k, r) =>
      states.set(hidden.subarray((r * length + length - 1) * d, (r * length + length) * d), k * d),
    );
  }
  return states;
}

/** HR@K and NDCG@K of one evaluation, with their per-user values (for paired tests). */
export interface HitRateAndNdcg {
  readonly hitRate: number;
  readonly ndcg: number;
  readonly perUser: { readonly hitRate: Float64Array; readonly ndcg: Float64Array };
}

/** SASRec's two figures at `cutoff` (default 10) from an evaluation's result. */
export function hitRateAndNdcg(result: EvaluationResult, cutoff = 10): HitRateAndNdcg {
  const hr = `hr@${cutoff}`;
  const ndcg = `ndcg@${cutoff}`;
  return {
    hitRate: result.metrics[hr]!,
    ndcg: result.metrics[ndcg]!,
    perUser: { hitRate: result.perUser[hr]!, ndcg: result.perUser[ndcg]! },
  };
}

/** Options of {@link evaluateSequential}. */
export interface SequenceEvaluationOptions {
  /**
   * `sampled` (default): each target ranked among the set's sampled negatives (SASRec's
   * protocol); `full`: among every item outside the user's history, the target kept (as
   * RecBole reports sequential models).
   */
  readonly protocol?: 'sampled' | 'full';
  /** Cutoffs K (default [10]). */
  readonly cutoffs?: readonly number[];
  /** Metrics (default every cutoff metric of the metrics package). */
  readonly metrics?: readonly MetricName[];
  /** The item table perturbed by this (`numItems x dimension`), for attacks. */
  readonly perturbation?: Float32Array;
  /** Full ranking's engine (`auto`: onnxruntime when installed) and threads. */
  readonly engine?: 'auto' | 'onnxruntime' | 'js';
  readonly threads?: number;
  /** Which split the set comes from, for the protocol record (default `test`). */
  readonly split?: 'test' | 'validation';
  /** Source id of each set user, for errors and the record. */
  readonly userIdMap?: { toSource(u: number): string };
}

/**
 * The model's states for `set`'s users as a factorized scorer over `set.users.length`
 * "users" (case k is `set.users[k]`) and every item, the item table perturbed when asked.
 */
export function sequenceScorer(
  tf: Tfjs,
  model: SequentialModel,
  set: SequenceEvaluationSet,
  options: Pick<SequenceEvaluationOptions, 'perturbation' | 'userIdMap'> = {},
): FactorizedScorer {
  checkItems(model, set.candidates, 'candidates');
  const table = tableOf(model, SEQUENCE_ITEM_TABLE).values;
  const perturbation = options.perturbation;
  if (perturbation && perturbation.length !== table.length)
    throw new DataError(
      `the perturbation has ${perturbation.length} values, the item table ${table.length}`,
    );
  const name = (k: number): string =>
    `user ${options.userIdMap?.toSource(set.users[k]!) ?? set.users[k]!}`;
  const userFactors = sequenceStates(tf, model, set.histories, {
    ...(perturbation ? { perturbation } : {}),
    nameOf: name,
  });
  for (let k = 0; k < set.users.length; k++)
    for (let c = 0; c < model.dimension; c++)
      if (!Number.isFinite(userFactors[k * model.dimension + c]!))
        throw new DataError(`the model's state after ${name(k)}'s history is not finite`);
  const itemFactors = perturbation
    ? Float32Array.from(table, (v, k) => v + perturbation[k]!)
    : table;
  return factorizedScorer({ userFactors, itemFactors, dimension: model.dimension });
}

/**
 * The evaluation set as a {@link Dataset} of `set.users.length` users: train holds each
 * history (without the target, which stays a candidate), test the target.
 */
function setAsDataset(
  set: SequenceEvaluationSet,
  numItems: number,
  options: SequenceEvaluationOptions,
): Dataset {
  const n = set.users.length;
  const users: number[] = [];
  const items: number[] = [];
  const targets = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const target = set.candidates[k * set.width]!;
    targets[k] = target;
    for (const i of new Set(set.histories[k]!))
      if (i !== target) {
        users.push(k);
        items.push(i);
      }
  }
  const sourceIds = Array.from(set.users, (u) => options.userIdMap?.toSource(u) ?? String(u));
  const relevant = InteractionMatrix.fromPairs(
    n,
    numItems,
    Int32Array.from({ length: n }, (_, k) => k),
    targets,
  );
  return {
    name: 'sequences',
    userIdMap: IdMap.inOrder(sourceIds),
    itemIdMap: IdMap.inOrder(Array.from({ length: numItems }, (_, i) => String(i))),
    numUsers: n,
    numItems,
    train: InteractionMatrix.fromPairs(n, numItems, users, items),
    // The targets are the evaluated split's relevant items, whichever split it is.
    validation: options.split === 'validation' ? relevant : null,
    test: relevant,
    coldStartItems: new Int32Array(0),
    protocol: {
      kind: 'leave-one-out',
      order: 'latest',
      seed: 0,
      coldStartItems: 'keep',
      droppedColdStartInteractions: 0,
      mergedDuplicates: 0,
      droppedTrainTestOverlap: 0,
      validation: null,
    },
  };
}

/** The set's sampled negatives as the metrics package's {@link SampledTestSet}. */
function setAsSampled(set: SequenceEvaluationSet): SampledTestSet {
  const n = set.users.length;
  const per = set.width - 1;
  const negatives = new Int32Array(n * per);
  const positives = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    positives[k] = set.candidates[k * set.width]!;
    negatives.set(set.candidates.subarray(k * set.width + 1, (k + 1) * set.width), k * per);
  }
  return {
    users: Int32Array.from({ length: n }, (_, k) => k),
    positives,
    negatives,
    negativesPerCase: per,
    numCases: n,
    source: `${per} sampled negatives per user`,
  };
}

/**
 * Ranks each user's target by the state after the user's history, through the metrics
 * package (pessimistic ties: rank = 1 + #candidates scoring >= the target), sampled or full
 * ranking (see {@link SequenceEvaluationOptions.protocol}), the item table perturbed when
 * given. `result.users` are the set's users (dense ids of the split).
 */
export async function evaluateSequential(
  tf: Tfjs,
  model: SequentialModel,
  set: SequenceEvaluationSet,
  options: SequenceEvaluationOptions = {},
): Promise<EvaluationResult> {
  const scorer = sequenceScorer(tf, model, set, options);
  const dataset = setAsDataset(set, model.numItems, options);
  const cutoffs = options.cutoffs ?? [10];
  const common = {
    cutoffs,
    split: options.split ?? 'test',
    ...(options.metrics ? { metrics: options.metrics } : {}),
  };
  const result =
    options.protocol === 'full'
      ? await evaluateFullRanking(scorer, dataset, {
          ...common,
          exclude: ['train'],
          ...(options.engine ? { engine: options.engine } : {}),
          ...(options.threads !== undefined ? { threads: options.threads } : {}),
        })
      : await evaluateSampled(scorer, dataset, setAsSampled(set), common);
  return { ...result, users: Int32Array.from(result.users, (k) => set.users[k]!) };
}
