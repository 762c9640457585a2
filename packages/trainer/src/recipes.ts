/**
 * The papers' experiments as library functions, written once: the CLI's `reproduce apr|amr`,
 * the quality benchmarks and the docs call these.
 *
 * - {@link runAprExperiment}: APR section 4 (Algorithm 1): MF-BPR pre-trained with early
 *   stopping, then from its parameters AMF (APR, FGM on both embeddings) versus BPR
 *   continued for as many epochs, compared on test (paired t-test, Wilcoxon), and both
 *   attacked (robustness sweep, APR Table 2).
 * - {@link trainAmrChain} and {@link runAmrExperiment}: AMR Algorithm 1: MF-BPR, VBPR
 *   initialised from MF's embeddings, then AMR (FGM on the item features) versus VBPR
 *   continued, compared on test, both attacked on their features (AMR Table 3).
 */
import { join } from 'node:path';
import { ConfigError } from '@advrec/data';
import type { Dataset } from '@advrec/data';
import { compareEvaluations, evaluateFullRanking, robustnessSweep } from '@advrec/metrics';
import type {
  EvaluationResult,
  MetricComparison,
  RobustnessOptions,
  RobustnessReport,
} from '@advrec/metrics';
import {
  FEATURE_PROJECTION,
  ITEM_EMBEDDINGS,
  ITEM_FEATURES,
  ItemPop,
  MatrixFactorization,
  USER_EMBEDDINGS,
  USER_VISUAL_EMBEDDINGS,
  VISUAL_BIAS,
  VisualBPR,
  absoluteEpsilon,
  cloneTable,
  resolveAttackTarget,
} from '@advrec/models';
import { readCheckpoint } from '@advrec/models';
import type { JsonObject, Model, ParameterTable, VisualBPRConfig } from '@advrec/models';
import type { TrainConfig } from './config.js';
import { trainStage } from './schedule.js';
import type { StageOptions } from './schedule.js';
import type { PhaseOptions, PhaseResult, TrainCallbacks } from './trainer.js';

/** A trained model of an experiment, under the name its tables and reports use. */
export interface ExperimentArm {
  readonly name: string;
  readonly model: Model;
  /** The phase that trained it (ItemPop: none). */
  readonly phase: PhaseResult | null;
}

/** What every experiment returns: models, test results, the comparison and the attacks. */
export interface ExperimentResult {
  /** Every model, in report order (baselines first, the candidate last). */
  readonly arms: readonly ExperimentArm[];
  /** Test results per arm name, in the same order. */
  readonly test: readonly (readonly [string, EvaluationResult])[];
  /** The candidate (adversarially trained) against the baseline continued for as long. */
  readonly comparison: {
    readonly candidate: string;
    readonly baseline: string;
    readonly metrics: Readonly<Record<string, MetricComparison>>;
  };
  /** Robustness of the baseline and the candidate (absent when disabled). */
  readonly robustness: readonly { readonly name: string; readonly report: RobustnessReport }[];
}

/** Options shared by the experiments. */
export interface ExperimentOptions {
  /** K (default 64, the papers'). */
  readonly embeddingSize?: number;
  /** Seed of the model initialisation (default 0). */
  readonly modelSeed?: number;
  /** Training config of every stage; its `adversarial` part is the candidate's. */
  readonly train?: TrainConfig;
  /** Test evaluation of a model (default: full ranking on the test split). */
  readonly evaluate?: (model: Model) => Promise<EvaluationResult>;
  /** Robustness sweep of a model (default {@link robustnessSweep} with `robustness`); `false` skips it. */
  readonly attack?: ((model: Model) => Promise<RobustnessReport>) | false;
  /** Options of the default attack. */
  readonly robustness?: RobustnessOptions;
  /** Folder for each stage's checkpoint (`<stage>.ckpt`); none written when absent. */
  readonly checkpoints?: string;
  /** Extra metadata every checkpoint records (e.g. the data set's fingerprint). */
  readonly checkpointMetadata?: JsonObject;
  /** Subscribers per stage. */
  readonly callbacks?: (stage: string) => TrainCallbacks;
  /** Stops the experiment between two epochs (or before an attack). */
  readonly signal?: AbortSignal;
}

/** Options of {@link runAprExperiment}. */
export interface AprExperimentOptions extends ExperimentOptions {
  /** Most MF-BPR pre-training epochs (default 300; early stopping per `train.validation`). */
  readonly bprEpochs?: number;
  /**
   * Training config of the MF-BPR pre-training alone (default `train`): e.g. classic
   * per-triple SGD (`algorithm: 'sgd-triples'`), the fastest route to a good MF-BPR, while
   * both continuations run `train` (APR's mini-batches). With a different optimiser the
   * continuations start with fresh optimiser state.
   */
  readonly pretrainingTrain?: TrainConfig;
  /** Give MF a learned item bias (`y = p_u . q_i + b_i`, Cornac's BPR; default false, the paper's MF). */
  readonly itemBias?: boolean;
  /** Epochs of each continuation, BPR and AMF (default 60). */
  readonly continueEpochs?: number;
  /**
   * AMF epsilons to try (default: `train.adversarial.epsilon`, else 0.5); with several, the
   * one with the best validation value is the candidate (validation only, never test).
   */
  readonly epsilons?: readonly number[];
  /**
   * How the continuations start from the pre-trained checkpoint: optimiser state `fresh`
   * (default, as the APR code's new Adagrad) or the `checkpoint`'s; `keepBest` (default
   * false: Algorithm 1 trains both arms as long and keeps their last parameters) restores
   * each arm's best validation epoch; `earlyStopping` (default false) applies
   * `train.validation.patience` to them.
   */
  readonly continuation?: {
    readonly optimizerState?: 'fresh' | 'checkpoint';
    readonly keepBest?: boolean;
    readonly earlyStopping?: boolean;
  };
}

/** What {@link runAprExperiment} adds to {@link ExperimentResult}. */
export interface AprExperimentResult extends ExperimentResult {
  readonly mf: MatrixFactorization;
  readonly pretraining: PhaseResult;
  /** Every AMF run (one per epsilon tried) and the epsilon chosen on validation. */
  readonly amfRuns: readonly {
    readonly epsilon: number;
    readonly model: MatrixFactorization;
    readonly phase: PhaseResult;
  }[];
  readonly chosenEpsilon: number;
}

/**
 * One stage of an experiment ({@link trainStage}) under the stage's name: its subscribers,
 * and with a checkpoints folder `<stage>.ckpt` (the best model when `bestCheckpoint` and the
 * phase validates, else the final one).
 */
async function experimentStage(
  stage: string,
  model: Model,
  dataset: Dataset,
  config: TrainConfig,
  options: ExperimentOptions,
  phase: Omit<PhaseOptions, 'signal' | 'checkpoint'> & { readonly bestCheckpoint?: boolean },
  start?: StageOptions['start'],
  keepOptimizerState?: (tables: ParameterTable[]) => void,
): Promise<PhaseResult> {
  const result = await trainStage(model, dataset, config, {
    ...phase,
    bestCheckpoint: phase.bestCheckpoint ?? false,
    ...(options.callbacks ? { callbacks: options.callbacks(stage) } : {}),
    ...(options.checkpoints
      ? {
          checkpoint: join(options.checkpoints, `${stage}.ckpt`),
          checkpointMetadata: options.checkpointMetadata ?? {},
        }
      : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(start ? { start } : {}),
  });
  keepOptimizerState?.(result.optimizerState);
  return result.phase;
}

/** Test evaluations, the comparison of the last two arms, and the attacks on them. */
async function finish(
  dataset: Dataset,
  arms: readonly ExperimentArm[],
  options: ExperimentOptions,
  defaultSurfaces?: readonly string[],
): Promise<ExperimentResult> {
  const evaluate =
    options.evaluate ??
    ((model: Model) =>
      evaluateFullRanking(model, dataset, { split: 'test', cutoffs: [10, 20, 50, 100] }));
  const test: [string, EvaluationResult][] = [];
  for (const arm of arms) test.push([arm.name, await evaluate(arm.model)]);
  const candidate = test.at(-1)!;
  const baseline = test.at(-2)!;
  const metrics = Object.fromEntries(
    Object.keys(candidate[1].metrics).map((key) => [
      key,
      compareEvaluations(candidate[1], baseline[1], key),
    ]),
  );
  const attack =
    options.attack === false
      ? null
      : (options.attack ??
        ((model: Model) =>
          robustnessSweep(model, dataset, {
            ...(defaultSurfaces ? { surfaces: defaultSurfaces } : {}),
            ...options.robustness,
          })));
  const robustness: { name: string; report: RobustnessReport }[] = [];
  if (attack)
    for (const arm of arms.slice(-2)) {
      options.signal?.throwIfAborted();
      robustness.push({ name: arm.name, report: await attack(arm.model) });
    }
  return {
    arms,
    test,
    comparison: { candidate: candidate[0], baseline: baseline[0], metrics },
    robustness,
  };
}

/**
 * APR section 4 on `dataset` (see the module comment). The candidate's adversary, lambda and
 * surfaces come from `train.adversarial` (default FGM on both embeddings, lambda 1).
 */
export async function runAprExperiment(
  dataset: Dataset,
  options: AprExperimentOptions = {},
): Promise<AprExperimentResult> {
  const base = options.train ?? {};
  const mf = new MatrixFactorization(dataset, {
    embeddingSize: options.embeddingSize ?? 64,
    seed: options.modelSeed ?? 0,
    ...(options.itemBias ? { itemBias: true } : {}),
  });
  const pretraining = await experimentStage(
    'mf-bpr',
    mf,
    dataset,
    options.pretrainingTrain ?? base,
    options,
    {
      epochs: options.bprEpochs ?? 300,
      adversarial: false,
      bestCheckpoint: true,
    },
  );
  // The continuations start from the best pre-trained parameters (restored by the phase).
  const start = pretraining.bestEpoch >= 0 ? pretraining.bestEpoch + 1 : pretraining.epochs.length;
  const copy = (): MatrixFactorization =>
    new MatrixFactorization(dataset, mf.config, {
      userEmbeddings: cloneTable(mf.userEmbeddings),
      itemEmbeddings: cloneTable(mf.itemEmbeddings),
      ...(mf.itemBias ? { itemBias: cloneTable(mf.itemBias) } : {}),
    });
  const c = options.continuation ?? {};
  // The checkpoint's optimiser state is that of the best epoch only when the phase wrote one.
  // Read once for every arm (Trainer.create copies the optimiser state, it does not adopt it).
  const sameOptimizer =
    (options.pretrainingTrain?.optimizer?.name ?? 'adagrad') ===
    (base.optimizer?.name ?? 'adagrad');
  const resume = async (): Promise<StageOptions['start']> => {
    if (c.optimizerState !== 'checkpoint' || !sameOptimizer) return { epoch: start };
    if (!options.checkpoints)
      throw new RangeError('continuation.optimizerState "checkpoint" needs a checkpoints folder');
    const saved = await readCheckpoint(join(options.checkpoints, 'mf-bpr.ckpt'));
    return {
      extraTables: saved.extraTables,
      epoch: Number(saved.metadata['epoch']),
      step: Number(saved.metadata['step']),
    };
  };
  const resumed = await resume();
  const validation = base.validation ?? {};
  const continuationConfig = (adversarial?: TrainConfig['adversarial']): TrainConfig => ({
    ...base,
    ...(adversarial ? { adversarial } : {}),
    validation: c.earlyStopping
      ? validation
      : {
          ...(validation.every !== undefined ? { every: validation.every } : {}),
          ...(validation.metric !== undefined ? { metric: validation.metric } : {}),
          ...(validation.threads !== undefined ? { threads: validation.threads } : {}),
        },
  });
  const epochs = options.continueEpochs ?? 60;
  const continued = copy();
  const continuedPhase = await experimentStage(
    'bpr-continued',
    continued,
    dataset,
    continuationConfig(),
    options,
    { epochs, adversarial: false, restoreBest: c.keepBest ?? false },
    resumed,
  );
  const adversarial = base.adversarial ?? {};
  const epsilons = options.epsilons ?? [adversarial.epsilon ?? 0.5];
  const amfRuns: { epsilon: number; model: MatrixFactorization; phase: PhaseResult }[] = [];
  for (const epsilon of epsilons) {
    const amf = copy();
    const phase = await experimentStage(
      epsilons.length > 1 ? `amf-eps-${epsilon}` : 'amf',
      amf,
      dataset,
      continuationConfig({ ...adversarial, epsilon }),
      options,
      { epochs, adversarial: true, restoreBest: c.keepBest ?? false },
      resumed,
    );
    amfRuns.push({ epsilon, model: amf, phase });
  }
  const chosen = amfRuns.reduce((best, run) =>
    run.phase.bestValue > best.phase.bestValue ? run : best,
  );
  const result = await finish(
    dataset,
    [
      { name: 'ItemPop', model: new ItemPop(dataset.train), phase: null },
      { name: 'MF-BPR', model: mf, phase: pretraining },
      { name: 'BPR continued', model: continued, phase: continuedPhase },
      { name: `AMF (eps ${chosen.epsilon})`, model: chosen.model, phase: chosen.phase },
    ],
    options,
  );
  return { ...result, mf, pretraining, amfRuns, chosenEpsilon: chosen.epsilon };
}

/** Options of {@link trainAmrChain} and {@link runAmrExperiment}; every default is the AMR paper's. */
export interface AmrChainOptions extends ExperimentOptions {
  /** Item features aligned to the dataset's dense item ids (`numItems x D`). */
  readonly features: { readonly data: Float32Array; readonly dimension: number };
  readonly mfEpochs?: number;
  readonly vbprEpochs?: number;
  readonly amrEpochs?: number;
  /**
   * Perturbation size on the image features, relative to the mean row norm of the features
   * as VBPR prepared them (`featureTransform.rowNorm`, `1 / sqrt(D)` by default): 0.1 (the default,
   * the paper's best on Pinterest) perturbs each item's features by a tenth of a typical
   * row's norm, whatever the extractor's scale. Tune it on validation.
   */
  readonly epsilon?: number;
  /**
   * AMR epsilons to try (relative, as `epsilon`; default `[epsilon]`): each trains AMR from
   * the same VBPR parameters and optimiser state, and the one with the best validation value
   * is the candidate (validation only, never test). The AMR paper tuned epsilon over a grid.
   */
  readonly epsilons?: readonly number[];
  /** lambda (default 1); with `epsilons`, the lambda the epsilons are tried at. */
  readonly adversarialWeight?: number;
  /**
   * lambdas to try at the epsilon chosen on validation (default `[adversarialWeight]`), each
   * from the same VBPR parameters and optimiser state; the best validation value over every
   * arm is the candidate.
   */
  readonly adversarialWeights?: readonly number[];
  /**
   * `paper`: the AMR paper's tuning (Section 5.1) instead of `epsilons` and
   * `adversarialWeights`: lambda at `adversarialWeight` (1) and epsilon in {0.01, 0.1, 1, 10},
   * then lambda in {0.01, 0.1, 1, 10} at the best epsilon; a best value on a grid's boundary
   * extends that grid one step (x10 or /10) within {@link AMR_GRID_LIMITS} (epsilon at most
   * 10, lambda at most 100), and a value chosen at the edge of what was tried is reported in
   * `tuningWarnings`. Eight to ten AMR runs, each kept in memory
   * (the feature table is shared). Measured on ML-1M posters (`pnpm bench amr-grid`), the
   * grid is flat and validation picks lambda 0.001: there, AMR cannot beat VBPR continued.
   */
  readonly grid?: 'paper';
  /** VBPR variant (default the paper's Eq. 4). */
  readonly vbpr?: VisualBPRConfig;
  /** Also continue VBPR for as many epochs as AMR, as the paper's comparison (default true). */
  readonly continueVbpr?: boolean;
  /**
   * `carry` (default): each stage starts from the previous stage's Adagrad state (by table
   * name; E starts fresh in the VBPR stage), as one continuous training would. `fresh`:
   * every stage restarts its optimiser. Measured (`pnpm bench vbpr-diagnosis`): restarting
   * Adagrad on trained parameters drops validation NDCG@20 at once (VBPR continued: 0.1322
   * -> 0.1255 within 5 epochs), because a fresh accumulator takes full-size steps.
   */
  readonly optimizerState?: 'carry' | 'fresh';
}

/** The chain's models and training records. */
export interface AmrChainResult {
  readonly mf: MatrixFactorization;
  readonly vbpr: VisualBPR;
  readonly vbprContinued: VisualBPR | null;
  /** The AMR run chosen on validation (the only one when one epsilon was tried). */
  readonly amr: VisualBPR;
  /** Every AMR run, one per (relative epsilon, lambda) tried; the chosen one among them. */
  readonly amrRuns: readonly {
    readonly epsilon: number;
    readonly adversarialWeight: number;
    readonly model: VisualBPR;
    readonly phase: PhaseResult;
  }[];
  readonly chosenEpsilon: number;
  readonly chosenAdversarialWeight: number;
  /** Tuned values at the edge of what was tried ({@link AMR_GRID_LIMITS}); empty when none. */
  readonly tuningWarnings: readonly TuningWarning[];
  readonly phases: {
    readonly mf: PhaseResult;
    readonly vbpr: PhaseResult;
    readonly vbprContinued: PhaseResult | null;
    readonly amr: PhaseResult;
  };
}

/** The AMR paper's tuning grid for epsilon and lambda (Section 5.1). */
export const AMR_PAPER_GRID: readonly number[] = [0.01, 0.1, 1, 10];

/** Refuses per-table settings for a table no model of the AMR chain has. */
function checkChainTables(base: TrainConfig): void {
  const chainTables = [
    USER_EMBEDDINGS,
    ITEM_EMBEDDINGS,
    USER_VISUAL_EMBEDDINGS,
    FEATURE_PROJECTION,
    VISUAL_BIAS,
  ];
  const unknownTables = Object.keys(base.tables ?? {}).filter((n) => !chainTables.includes(n));
  if (unknownTables.length > 0)
    throw new ConfigError(
      unknownTables.map((name) => ({
        path: `train.tables.${name}`,
        message: `no model of the AMR chain has a table "${name}"; they have ${chainTables.join(', ')}`,
      })),
    );
}

/** The AMR arms' epsilons and lambdas: the paper's grid, or the values given (checked). */
function amrGrid(options: AmrChainOptions) {
  const paperGrid = options.grid === 'paper';
  const epsilons = paperGrid ? AMR_PAPER_GRID : (options.epsilons ?? [options.epsilon ?? 0.1]);
  const weight = options.adversarialWeight ?? 1;
  const weights = paperGrid ? AMR_PAPER_GRID : (options.adversarialWeights ?? [weight]);
  for (const [path, values] of [
    ['epsilons', epsilons],
    ['adversarialWeights', weights],
  ] as const)
    if (values.length === 0 || values.some((e) => !(Number.isFinite(e) && e >= 0)))
      throw new ConfigError([
        {
          path,
          message: `must be one or more finite numbers >= 0, got [${values.join(', ')}]`,
        },
      ]);
  return { paperGrid, epsilons, weight, weights };
}

/** The best run on validation. */
function bestOnValidation<T extends { phase: PhaseResult }>(runs: readonly T[]): T {
  return runs.reduce((a, b) => (b.phase.bestValue > a.phase.bestValue ? b : a));
}

/**
 * How far the paper's grid may be extended beyond its boundary (one step of x10 or /10 at
 * a time): a relative epsilon above 10 perturbs each item's features by more than ten times
 * a typical row's norm, which erases them rather than attacks them (measured: the feature
 * projection collapses and AMR becomes MF-BPR); a lambda above 100 makes the clean BPR term
 * a rounding error. Below 0.001 either is indistinguishable from zero.
 */
export const AMR_GRID_LIMITS = {
  epsilon: { min: 0.001, max: 10 },
  adversarialWeight: { min: 0.001, max: 100 },
} as const;

/** A tuned value at the edge of what was tried, in words (`grid-edge` warnings). */
export interface TuningWarning {
  readonly code: 'grid-edge';
  readonly message: string;
}

/**
 * The paper's search: epsilon at lambda = adversarialWeight, then lambda at the best epsilon;
 * on the paper's grid, a best value on the grid's boundary extends it one step (x10 or /10),
 * within {@link AMR_GRID_LIMITS}. Returns a warning for each value chosen at the edge of what
 * was tried, saying whether the limit stopped the extension.
 */
async function searchAmrGrid<
  R extends { epsilon: number; adversarialWeight: number; phase: PhaseResult },
>(
  arm: (epsilon: number, adversarialWeight: number) => Promise<R>,
  grid: {
    paperGrid: boolean;
    epsilons: readonly number[];
    weight: number;
    weights: readonly number[];
  },
): Promise<TuningWarning[]> {
  const { paperGrid, epsilons, weight, weights } = grid;
  const best = bestOnValidation;
  const warnings: TuningWarning[] = [];
  /**
   * Tries each value of one hyper-parameter; on the paper's grid, a best value on the grid's
   * boundary extends it one step (x10 or /10) unless that leaves the limits.
   */
  const sweep = async (
    name: 'epsilon' | 'adversarialWeight',
    values: readonly number[],
    make: (value: number) => Promise<R>,
    valueOf: (run: R) => number,
  ): Promise<R> => {
    const tried = [];
    for (const value of values) tried.push(await make(value));
    const value = valueOf(best(tried));
    const low = Math.min(...values);
    const high = Math.max(...values);
    const limits = AMR_GRID_LIMITS[name];
    let stoppedAt: number | null = null;
    if (paperGrid && values.length > 1 && (value === low || value === high)) {
      const beyond = value === low ? value / 10 : value * 10;
      if (beyond >= limits.min * (1 - 1e-9) && beyond <= limits.max * (1 + 1e-9))
        tried.push(await make(beyond));
      else stoppedAt = value === low ? limits.min : limits.max;
    }
    const chosen = best(tried);
    const all = tried.map(valueOf);
    const v = valueOf(chosen);
    if (all.length > 1 && (v === Math.min(...all) || v === Math.max(...all))) {
      const label = name === 'epsilon' ? 'epsilon' : 'lambda';
      const side = v === Math.min(...all) ? 'smallest' : 'largest';
      warnings.push({
        code: 'grid-edge',
        message: `the tuned AMR ${label} ${v} is the ${side} value tried (${all.join(', ')}): validation may prefer a value beyond it${stoppedAt !== null ? `, but the grid's extension stops at its documented limit ${stoppedAt} (AMR_GRID_LIMITS)` : paperGrid ? ' (the grid was already extended one step)' : ''}. Read AMR against VBPR continued with that in mind${label === 'epsilon' && side === 'largest' ? ': a very large epsilon switches the visual part off rather than making it robust' : ''}.`,
      });
    }
    return chosen;
  };
  // Epsilon at lambda = adversarialWeight, then lambda at the best epsilon (the paper's order).
  const bestEpsilon = (
    await sweep(
      'epsilon',
      epsilons,
      (e) => arm(e, weight),
      (r) => r.epsilon,
    )
  ).epsilon;
  await sweep(
    'adversarialWeight',
    weights,
    (w) => arm(bestEpsilon, w),
    (r) => r.adversarialWeight,
  );
  return warnings;
}

/**
 * AMR Algorithm 1 as a chain: MF-BPR, then VBPR initialised from MF's embeddings, then AMR
 * (BPR + lambda * BPR under FGM perturbations of the image features) initialised from
 * VBPR, with VBPR continued from the same parameters for comparison. Each stage keeps its
 * best validation epoch when the dataset has a validation split. Stages: `mf-bpr`, `vbpr`,
 * `vbpr-continued`, `amr`.
 */
export async function trainAmrChain(
  dataset: Dataset,
  options: AmrChainOptions,
): Promise<AmrChainResult> {
  const k = options.embeddingSize ?? 64;
  const base = options.train ?? {};
  checkChainTables(base);
  const seed = options.modelSeed ?? base.seed ?? 0;
  const mf = new MatrixFactorization(dataset, { embeddingSize: k, seed });
  const carry = (options.optimizerState ?? 'carry') === 'carry';
  let state: ParameterTable[] = [];
  const keep = (tables: ParameterTable[]): void => {
    state = tables;
  };
  // The next stage starts from the last stage's optimiser state (copied: each Trainer copies).
  const from = (): StageOptions['start'] =>
    carry ? { extraTables: state.map(cloneTable) } : undefined;
  const mfPhase = await experimentStage(
    'mf-bpr',
    mf,
    dataset,
    base,
    options,
    { epochs: options.mfEpochs ?? 100, adversarial: false },
    undefined,
    keep,
  );
  const vbpr = VisualBPR.fromMatrixFactorization(
    mf,
    options.features,
    { seed, ...options.vbpr },
    dataset.train,
  );
  const vbprPhase = await experimentStage(
    'vbpr',
    vbpr,
    dataset,
    base,
    options,
    { epochs: options.vbprEpochs ?? 50, adversarial: false },
    from(),
    keep,
  );
  // The item features are fixed (AMR perturbs a batch's copy, never the table): shared, not
  // copied, by the continued and adversarial arms.
  const copy = (): VisualBPR =>
    new VisualBPR(dataset, null, vbpr.config, {
      tables: vbpr.tables.map((t) => (t.name === ITEM_FEATURES ? t : cloneTable(t))),
    });
  const amrEpochs = options.amrEpochs ?? 50;
  // Both arms start from VBPR's optimiser state (the same copy for each).
  const afterVbpr = state;
  const vbprState = (): StageOptions['start'] =>
    carry ? { extraTables: afterVbpr.map(cloneTable) } : undefined;
  let vbprContinued: VisualBPR | null = null;
  let continuedPhase: PhaseResult | null = null;
  if (options.continueVbpr ?? true) {
    vbprContinued = copy();
    continuedPhase = await experimentStage(
      'vbpr-continued',
      vbprContinued,
      dataset,
      base,
      options,
      { epochs: amrEpochs, adversarial: false },
      vbprState(),
    );
  }
  const { paperGrid, epsilons, weight, weights } = amrGrid(options);
  const amrRuns: {
    epsilon: number;
    adversarialWeight: number;
    model: VisualBPR;
    phase: PhaseResult;
  }[] = [];
  const lambdaGrid = weights.length > 1 || paperGrid;
  /** One AMR arm from VBPR's parameters and optimiser state (each pair trained once). */
  const arm = async (epsilon: number, adversarialWeight: number): Promise<(typeof amrRuns)[0]> => {
    const done = amrRuns.find(
      (r) => r.epsilon === epsilon && r.adversarialWeight === adversarialWeight,
    );
    if (done) return done;
    const amr = copy();
    const single = epsilons.length === 1 && !lambdaGrid;
    const phase = await experimentStage(
      single ? 'amr' : `amr-eps${epsilon}${lambdaGrid ? `-lambda${adversarialWeight}` : ''}`,
      amr,
      dataset,
      {
        ...base,
        adversarial: {
          adversary: 'fgm',
          // Relative to the prepared features' mean row norm (the surface's own scale).
          epsilon: absoluteEpsilon(resolveAttackTarget(vbpr), epsilon),
          adversarialWeight,
          surfaces: [ITEM_FEATURES],
        },
      },
      options,
      { epochs: amrEpochs, adversarial: true },
      vbprState(),
    );
    const run = { epsilon, adversarialWeight, model: amr, phase };
    amrRuns.push(run);
    return run;
  };
  const tuningWarnings = await searchAmrGrid(arm, { paperGrid, epsilons, weight, weights });
  const chosen = bestOnValidation(amrRuns);
  return {
    mf,
    vbpr,
    vbprContinued,
    amr: chosen.model,
    amrRuns,
    chosenEpsilon: chosen.epsilon,
    chosenAdversarialWeight: chosen.adversarialWeight,
    tuningWarnings,
    phases: {
      mf: mfPhase,
      vbpr: vbprPhase,
      vbprContinued: continuedPhase,
      amr: chosen.phase,
    },
  };
}

/**
 * The AMR experiment: {@link trainAmrChain}, then ItemPop, MF-BPR, VBPR, VBPR continued and
 * AMR on test, AMR against VBPR continued, and both attacked on their item features.
 */
export async function runAmrExperiment(
  dataset: Dataset,
  options: AmrChainOptions,
): Promise<ExperimentResult & { readonly chain: AmrChainResult }> {
  const chain = await trainAmrChain(dataset, { ...options, continueVbpr: true });
  const result = await finish(
    dataset,
    [
      { name: 'ItemPop', model: new ItemPop(dataset.train), phase: null },
      { name: 'MF-BPR', model: chain.mf, phase: chain.phases.mf },
      { name: 'VBPR', model: chain.vbpr, phase: chain.phases.vbpr },
      { name: 'VBPR continued', model: chain.vbprContinued!, phase: chain.phases.vbprContinued },
      {
        name: `AMR (eps ${chain.chosenEpsilon}${chain.chosenAdversarialWeight !== 1 ? `, lambda ${chain.chosenAdversarialWeight}` : ''})`,
        model: chain.amr,
        phase: chain.phases.amr,
      },
    ],
    options,
    [ITEM_FEATURES],
  );
  return { ...result, chain };
}
