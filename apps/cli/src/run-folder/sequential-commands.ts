/**
 * `evaluate`, `attack` and `recommend` on a sequential run folder: the model of its
 * checkpoint on the run's own sequences and split, under the SASRec protocol (the target
 * among sampled negatives) or full ranking (among every item outside the history).
 */
import { ConfigError, DataError } from '@advrec/data';
import { multiplyJs } from '@advrec/onnx';
import { getAdversary } from '@advrec/adversary';
import type { Adversary } from '@advrec/adversary';
import {
  craftSequencePerturbation,
  encodeSequences,
  evaluateSequential,
  meanItemRowNorm,
  sequenceCandidates,
} from '@advrec/trainer';
import type { SequenceEvaluationSet } from '@advrec/trainer';
import { padHistory } from '@advrec/data';
import type { SequentialModel, Tfjs } from '@advrec/models';
import { relativeChanges, robustnessWarnings } from '@advrec/metrics';
import type { ChangeInterval } from '@advrec/metrics';
import { changeCell, logWarnings } from '../evaluation.js';
import { emit, resultFile, textTable } from './context.js';
import type { CommandContext } from './context.js';
import { toJson, writeText } from './runs.js';
import { openSequentialRun, reloadSequentialRun } from './sequential.js';

/** What `evaluate` and `attack` ask of a sequential run. */
export interface SequentialEvaluationOptions {
  readonly run: string;
  readonly checkpoint?: string;
  readonly protocol?: 'full' | 'sampled';
  readonly negatives?: number;
  readonly cutoffs?: readonly number[];
  readonly split?: 'test' | 'validation';
  readonly seed?: number;
}

type Opened = Awaited<ReturnType<typeof openSequentialRun>>;

/** The run's model, data and the evaluation set the options name. */
async function openForEvaluation(options: SequentialEvaluationOptions) {
  const { config, model, file } = await reloadSequentialRun(options.run, options.checkpoint);
  const run = await openSequentialRun(config, model);
  const which = options.split ?? 'test';
  const negatives = options.negatives ?? config.evaluation.negatives;
  // The run's own candidates unless another count of negatives is asked for.
  const set =
    negatives === config.evaluation.negatives && options.seed === undefined
      ? which === 'test'
        ? run.test
        : run.validation
      : sequenceCandidates(run.split, which, {
          negatives,
          seed: options.seed ?? config.training.seed + (which === 'test' ? 2 : 1),
        });
  return { config, run, file, set, which, negatives };
}

/** HR@K, NDCG@K and MRR@K of `model` on `set` under a protocol (the metrics package's evaluators), the item table perturbed when given. */
async function metricsOf(
  run: Opened,
  set: SequenceEvaluationSet,
  protocol: 'full' | 'sampled',
  cutoffs: readonly number[],
  perturbation?: Float32Array,
): Promise<{ metrics: Record<string, number>; perUser: Record<string, Float64Array> }> {
  const result = await evaluateSequential(run.tf, run.model, set, {
    protocol,
    cutoffs,
    metrics: ['hr', 'ndcg', 'mrr'],
    ...(run.split.userIdMap ? { userIdMap: run.split.userIdMap } : {}),
    ...(perturbation ? { perturbation } : {}),
  });
  return { metrics: { ...result.metrics }, perUser: { ...result.perUser } };
}

function protocolLine(protocol: 'full' | 'sampled', negatives: number, which: string): string {
  return protocol === 'full'
    ? `${which} target of each user ranked among every item outside the user's history (full ranking), ties pessimistic`
    : `${which} target of each user ranked against ${negatives} sampled items the user never interacted with, ties pessimistic`;
}

/** `advrec evaluate` on a sequential run folder. */
export async function evaluateSequentialRun(
  options: SequentialEvaluationOptions,
  context: CommandContext,
): Promise<number> {
  const { run, file, set, which, negatives } = await openForEvaluation(options);
  const protocol = options.protocol ?? 'sampled';
  const cutoffs = options.cutoffs ?? [10, 20];
  const started = performance.now();
  const { metrics } = await metricsOf(run, set, protocol, cutoffs);
  const seconds = (performance.now() - started) / 1000;
  const out = await resultFile(options.run, `evaluation-${protocol}-${which}`);
  const protocolText = protocolLine(protocol, negatives, which);
  await writeText(
    out,
    toJson({
      checkpoint: file,
      metrics,
      protocol: { name: protocol, text: protocolText, users: set.users.length, negatives },
      seconds,
    }),
  );
  emit(context, { checkpoint: file, metrics, protocol: protocolText, file: out }, () =>
    [
      textTable(Object.keys(metrics), [Object.values(metrics).map((v) => Number(v.toFixed(4)))]),
      `protocol: ${protocolText}; ${set.users.length} users, ${seconds.toFixed(1)} s`,
      `written: ${out}`,
    ].join('\n'),
  );
  return 0;
}

/** Options of `advrec attack` on a sequential run. */
export interface SequentialAttackOptions extends SequentialEvaluationOptions {
  /** Relative to the mean item-row norm. */
  readonly epsilons?: readonly number[];
  readonly adversaries?: readonly string[];
  readonly surfaces?: readonly string[];
}

/**
 * `advrec attack` on a sequential run folder: registered adversaries (FGM on the gradient of
 * the training loss per item row, random noise of the same norm, FGSM, a plugin's) on the
 * item embeddings, each epsilon relative to the mean item-row norm; the metrics' relative
 * change against the clean model.
 */
export async function attackSequentialRun(
  options: SequentialAttackOptions,
  context: CommandContext,
): Promise<number> {
  const adversaries = options.adversaries ?? ['fgm', 'random'];
  // Every registered adversary (built-in or a loaded plugin's), named as the pairwise attack names them.
  const resolved = new Map(
    adversaries.map((name) => {
      try {
        return [name, getAdversary(name)] as const;
      } catch (error) {
        if (!ConfigError.isInstance(error)) throw error;
        throw new ConfigError(error.issues.map((i) => ({ ...i, path: '--adversaries' })));
      }
    }),
  );
  const surfaces = options.surfaces ?? ['itemEmbeddings'];
  if (surfaces.some((s) => s !== 'itemEmbeddings'))
    throw new ConfigError([
      {
        path: '--surfaces',
        message: `a sequential model's surface is itemEmbeddings; got ${surfaces.join(', ')}`,
      },
    ]);
  const { config, run, file, set, which, negatives } = await openForEvaluation(options);
  const protocol = options.protocol ?? 'sampled';
  const cutoffs = options.cutoffs ?? [10];
  const epsilons = options.epsilons ?? config.evaluation.attackEpsilons;
  const norm = meanItemRowNorm(run.model);
  const clean = await metricsOf(run, set, protocol, cutoffs);
  const points = await sequentialSweep(run, set, protocol, cutoffs, clean.perUser, {
    adversaries: adversaries.map((name) => [name, resolved.get(name)!] as const),
    epsilons,
    norm,
    seed: options.seed ?? config.training.seed,
    context,
  });
  if (context.signal.aborted) return 130;
  const warnings = robustnessWarnings(
    { clean: clean.metrics, surfaces: ['itemEmbeddings'], points },
    { model: run.model },
  );
  logWarnings(context, warnings);
  const out = await resultFile(options.run, 'robustness');
  const protocolText = protocolLine(protocol, negatives, which);
  await writeText(
    out,
    toJson({
      checkpoint: file,
      surface: 'itemEmbeddings',
      epsilonUnit: `relative to the mean item-row norm (${norm.toPrecision(4)})`,
      protocol: protocolText,
      confidence: CONFIDENCE,
      clean: clean.metrics,
      points,
      warnings,
    }),
  );
  const keys = Object.keys(clean.metrics);
  emit(context, { checkpoint: file, clean: clean.metrics, points, warnings, file: out }, () =>
    [
      `clean: ${keys.map((k) => `${k} ${clean.metrics[k]!.toFixed(4)}`).join(', ')}`,
      textTable(
        ['adversary', 'epsilon (x mean row norm)', ...keys.map((k) => `${k} change`)],
        points.map((p) => [
          p.draws ? `${p.adversary}, mean of ${p.draws} draws` : p.adversary,
          p.epsilon,
          ...keys.map((k) => changeCell(p.relativeChange[k], p.intervals[k])),
        ]),
      ),
      `(n.s.): the ${Math.round(CONFIDENCE * 100)}% paired interval over users covers zero`,
      `protocol: ${protocolText}; written: ${out}`,
    ].join('\n'),
  );
  return 0;
}

/**
 * Each adversary at each epsilon (relative to the mean item-row norm) on the item embeddings:
 * the metrics, relative changes and paired intervals against the clean per-user values,
 * random noise averaged over seeded draws. Stops early (fewer points) when aborted.
 */
async function sequentialSweep(
  run: Opened,
  set: SequenceEvaluationSet,
  protocol: 'full' | 'sampled',
  cutoffs: readonly number[],
  cleanPerUser: Record<string, Float64Array>,
  sweep: {
    readonly adversaries: readonly (readonly [string, Adversary])[];
    readonly epsilons: readonly number[];
    readonly norm: number;
    readonly seed: number;
    readonly context: CommandContext;
  },
): Promise<SequentialRobustnessPoint[]> {
  const bar = sweep.context.progress.bar(
    'robustness sweep',
    sweep.epsilons.length * sweep.adversaries.length,
  );
  const points: SequentialRobustnessPoint[] = [];
  for (const [name, adversary] of sweep.adversaries)
    for (const relativeEpsilon of sweep.epsilons) {
      if (sweep.context.signal.aborted) break;
      const epsilon = relativeEpsilon * sweep.norm;
      // Random noise: the per-user values averaged over seeded draws, as the pairwise sweep.
      const draws = adversary.usesGradient ? 1 : RANDOM_DRAWS;
      const perUser: Record<string, Float64Array> = {};
      for (let draw = 0; draw < draws; draw++) {
        const perturbation = await craftSequencePerturbation(run.tf, run.model, run.split, {
          adversary,
          epsilon,
          seed: sweep.seed + draw,
        });
        const attacked = await metricsOf(run, set, protocol, cutoffs, perturbation);
        for (const [key, values] of Object.entries(attacked.perUser)) {
          const sum = (perUser[key] ??= new Float64Array(values.length));
          for (let c = 0; c < values.length; c++) sum[c]! += values[c]! / draws;
        }
      }
      const change = relativeChanges(cleanPerUser, perUser, CONFIDENCE);
      points.push({
        adversary: name,
        norm: adversary.norm ?? 'l2',
        attack: 'training-loss',
        epsilon: relativeEpsilon,
        absoluteEpsilon: epsilon,
        ...(draws > 1 ? { draws } : {}),
        metrics: change.metrics,
        relativeChange: change.relativeChange,
        intervals: change.intervals,
      });
      bar.update(points.length);
    }
  bar.finish();
  return points;
}

/** Seeded draws of random noise averaged per user (as the pairwise sweep's `randomDraws`). */
const RANDOM_DRAWS = 3;
/** Confidence of the paired intervals. */
const CONFIDENCE = 0.95;

/** One point of a sequential model's robustness sweep (the pairwise sweep's fields). */
interface SequentialRobustnessPoint {
  readonly adversary: string;
  readonly norm: 'l2' | 'linf';
  readonly attack: 'training-loss';
  /** Relative to the mean item-row norm. */
  readonly epsilon: number;
  readonly absoluteEpsilon: number;
  readonly draws?: number;
  readonly metrics: Record<string, number>;
  readonly relativeChange: Record<string, number>;
  readonly intervals: Record<string, ChangeInterval>;
}

/** The top `k` items after `history` by the hidden state, excluding `excluded`. */
function nextItems(
  tf: Tfjs,
  model: SequentialModel,
  history: Int32Array,
  k: number,
  excluded: ReadonlySet<number>,
  scoresOf: (hidden: Float32Array) => Float32Array,
): { items: number[]; scores: number[] } {
  const inputs = padHistory(history, Math.min(Math.max(1, history.length), model.maxLength));
  const length = inputs.length;
  const hidden = encodeSequences(tf, model, inputs, 1, length);
  const scores = scoresOf(
    hidden.subarray((length - 1) * model.dimension, length * model.dimension),
  );
  const order = Array.from(scores.keys())
    .filter((i) => !excluded.has(i))
    .sort((a, b) => scores[b]! - scores[a]! || a - b)
    .slice(0, k);
  return { items: order, scores: order.map((i) => scores[i]!) };
}

/** Options of `advrec recommend` on a sequential run. */
export interface SequentialRecommendOptions {
  readonly run: string;
  readonly checkpoint?: string;
  /** Users of the run's data: the next items after each one's whole sequence. */
  readonly users?: readonly string[];
  /** A sequence of item ids (oldest first): the next items after it. */
  readonly items?: readonly string[];
  readonly k: number;
  readonly format: 'json' | 'csv';
  readonly includeSeen?: boolean;
}

/**
 * `advrec recommend` on a sequential run folder: the next `k` items after each user's whole
 * sequence in the run's data (its train, validation and test items), or after a sequence of
 * item ids given on the command line; the items already in the sequence are left out unless
 * `includeSeen`.
 */
export async function recommendSequential(
  options: SequentialRecommendOptions,
  context: CommandContext,
): Promise<number> {
  if (!(Number.isInteger(options.k) && options.k >= 1))
    throw new ConfigError([{ path: '--k', message: `must be an integer >= 1, got ${options.k}` }]);
  const { config, model } = await reloadSequentialRun(options.run, options.checkpoint);
  const run = await openSequentialRun(config, model);
  const { split } = run;
  if (!split.userIdMap || !split.itemIdMap)
    throw new ConfigError([
      { path: 'data.source', message: `${split.source} has no source ids (synthetic data)` },
    ]);
  const userIds = split.userIdMap;
  const itemIds = split.itemIdMap;
  const sequences: { label: string; history: Int32Array }[] = [];
  if (options.items && options.items.length > 0) {
    const unknown = options.items.filter((i) => !itemIds.has(i));
    if (unknown.length > 0)
      throw new DataError(
        `unknown item id${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 10).join(', ')} (${split.source} has ${split.numItems} items)`,
      );
    sequences.push({
      label: options.items.join(' '),
      history: Int32Array.from(options.items, (i) => itemIds.toDense(i)),
    });
  }
  const users = options.users ?? [];
  const unknownUsers = users.filter((u) => !userIds.has(u));
  if (unknownUsers.length > 0)
    throw new DataError(
      `unknown user id${unknownUsers.length > 1 ? 's' : ''} ${unknownUsers.slice(0, 10).join(', ')} (${split.source} has ${split.numUsers} users)`,
    );
  for (const user of users) {
    const u = userIds.toDense(user);
    const whole = [...split.train[u]!];
    if (split.validation[u]! >= 0) whole.push(split.validation[u]!);
    if (split.test[u]! >= 0) whole.push(split.test[u]!);
    sequences.push({ label: user, history: Int32Array.from(whole) });
  }
  if (sequences.length === 0)
    throw new ConfigError([{ path: '--users', message: 'give --users or --items' }]);
  const items = model.tables.find((t) => t.name === 'itemEmbeddings')!.values;
  const scoresOf = (hidden: Float32Array): Float32Array =>
    multiplyJs(hidden, 1, model.dimension, items, model.numItems, model.dimension, false, true);
  const out = sequences.map(({ label, history }) => {
    const excluded = options.includeSeen ? new Set<number>() : new Set(history);
    const top = nextItems(run.tf, model, history, options.k, excluded, scoresOf);
    return {
      ...(options.users?.includes(label) ? { user: label } : { after: label }),
      items: top.items.map((i, rank) => ({
        item: itemIds.toSource(i),
        rank: rank + 1,
        score: top.scores[rank]!,
      })),
    };
  });
  if (options.format === 'csv' && !context.json) {
    context.stdout.write('sequence,rank,item,score\n');
    for (const [k, list] of out.entries())
      for (const r of list.items)
        context.stdout.write(`${sequences[k]!.label},${r.rank},${r.item},${r.score}\n`);
  } else context.stdout.write(toJson(out));
  return 0;
}
