/**
 * The training schedule as a library function, written once: the CLI's `train`, the recipes
 * and the benchmarks call it (DESIGN "One house"). One stage is {@link trainStage} (a trainer,
 * one phase, closed whatever happens); a run is {@link trainSchedule}: an optional MF-BPR warm
 * start (the AMR paper's Algorithm 1), the BPR phase, then the adversarial phase (APR / AMR),
 * with the best checkpoint per phase, a resumable checkpoint every few epochs, the final model,
 * and a stop between two epochs when the signal fires.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '@advrec/data';
import type { Dataset } from '@advrec/data';
import {
  MatrixFactorization,
  VisualBPR,
  cloneTable,
  readCheckpoint,
  restoreModel,
  writeCheckpoint,
} from '@advrec/models';
import type { JsonObject, Model, ParameterTable } from '@advrec/models';
import { resolveTrainConfig } from './config.js';
import type { TrainConfig } from './config.js';
import type { EngineInfo } from './engine.js';
import { optimizerTables } from './optimizer.js';
import { Trainer } from './trainer.js';
import type {
  EpochEvent,
  PhaseOptions,
  PhaseProgress,
  PhaseResult,
  TrainCallbacks,
  ValidationEvent,
} from './trainer.js';
import type { EvaluationResult } from '@advrec/metrics';

/**
 * The per-table settings of a config that names tables of several models (a chain's MF and
 * VBPR): only the tables `model` trains are kept.
 */
export function configForModel(config: TrainConfig, model: Model): TrainConfig {
  if (config.tables === undefined) return config;
  const tables = Object.fromEntries(
    Object.entries(config.tables).filter(([name]) => model.trainableTables.includes(name)),
  );
  return { ...config, tables };
}

/** Options of {@link trainStage}. */
export interface StageOptions extends Omit<PhaseOptions, 'checkpoint' | 'checkpointMetadata'> {
  /** Subscribers of this stage. */
  readonly callbacks?: TrainCallbacks;
  /**
   * The stage's checkpoint: its best validated model when `bestCheckpoint` (the default) and
   * the phase validates, else the final one (with optimiser state and config, as
   * {@link Trainer.save}).
   */
  readonly checkpoint?: string;
  readonly checkpointMetadata?: JsonObject;
  /** Write the best validated model to `checkpoint` as it improves (default true). */
  readonly bestCheckpoint?: boolean;
  /** Write the final model to `checkpoint` when no best one was written (default true). */
  readonly finalCheckpoint?: boolean;
  /** Optimiser state, epoch and step to start from (see {@link Trainer.create}). */
  readonly start?: {
    readonly extraTables?: readonly ParameterTable[];
    readonly epoch?: number;
    readonly step?: number;
  };
}

/** What {@link trainStage} returns. */
export interface StageResult {
  readonly phase: PhaseResult;
  /** A copy of the optimiser state at the end (a next stage may continue from it). */
  readonly optimizerState: ParameterTable[];
  readonly engine: EngineInfo;
  /** The trainer's epoch counter at the end. */
  readonly epoch: number;
  readonly step: number;
}

/**
 * One stage: a trainer for `model` (only the per-table settings of its own tables), one phase,
 * its checkpoint, and the trainer closed whatever happens.
 */
export async function trainStage(
  model: Model,
  dataset: Dataset,
  config: TrainConfig,
  options: StageOptions,
): Promise<StageResult> {
  const {
    callbacks,
    checkpoint,
    checkpointMetadata,
    bestCheckpoint,
    finalCheckpoint,
    start,
    ...phase
  } = options;
  const trainer = await Trainer.create(
    model,
    dataset,
    configForModel(config, model),
    callbacks ?? {},
    start,
  );
  try {
    const best = bestCheckpoint ?? true;
    const metadata = checkpointMetadata ?? {};
    const result = await trainer.runPhase({
      ...phase,
      ...(checkpoint && best ? { checkpoint, checkpointMetadata: metadata } : {}),
    });
    if (checkpoint && (finalCheckpoint ?? true) && !(best && result.bestEpoch >= 0))
      await trainer.save(checkpoint, metadata);
    return {
      phase: result,
      optimizerState: optimizerTables(trainer.optimizerStates).map(cloneTable),
      engine: trainer.engineInfo,
      epoch: trainer.epoch,
      step: trainer.step,
    };
  } finally {
    await trainer.close();
  }
}

/** The stages of a schedule, in order. */
export type ScheduleStageName = 'warm-start' | 'bpr' | 'adversarial';

/** A stage as the schedule's subscribers see it. */
export interface ScheduleStage {
  readonly name: ScheduleStageName;
  /** The stage's epochs in all (a resumed stage: including those already run). */
  readonly epochs: number;
  /** The trainer's epoch at which the stage started (0-based; events count from it). */
  readonly firstEpoch: number;
  /** The validation metric that picks the stage's best epoch. */
  readonly metric: string;
  /** The adversary of an adversarial stage. */
  readonly adversary: string | null;
}

/** Subscribers of {@link trainSchedule}: the trainer's events, with the stage they belong to. */
export interface ScheduleCallbacks {
  onLog?(message: string): void;
  onStageStart?(stage: ScheduleStage): void;
  onStageEnd?(stage: ScheduleStage, result: PhaseResult): void;
  onEpochEnd?(event: EpochEvent, stage: ScheduleStage): void | Promise<void>;
  onValidation?(
    event: ValidationEvent,
    result: EvaluationResult,
    stage: ScheduleStage,
  ): void | Promise<void>;
}

/** What to train, in order. */
export interface SchedulePlan {
  /**
   * The run's trainer config: the BPR epochs' (unless `pretraining` is given) and the
   * adversarial epochs' (its `adversarial` part).
   */
  readonly config: TrainConfig;
  /** BPR epochs (the most: validation may stop them early). */
  readonly bprEpochs: number;
  /** Adversarial epochs after them (0: none). */
  readonly adversarialEpochs: number;
  /**
   * The BPR epochs' own config: they get a trainer of their own, and the adversarial epochs a
   * new one from the best BPR parameters with a fresh optimiser state (the APR code's new
   * Adagrad). Absent: one trainer runs both phases.
   */
  readonly pretraining?: TrainConfig;
  /**
   * The AMR paper's Algorithm 1: train an MF-BPR of the model's size first and copy its user
   * and item embeddings into the model (a VBPR), whose trainer continues the MF's optimiser
   * state. Its epochs use `pretraining` (else `config`) without the adversarial part.
   */
  readonly warmStart?: { readonly epochs: number; readonly seed?: number };
  /** Write `last.ckpt` every this many epochs (0: only on a stop). */
  readonly checkpointEvery?: number;
}

/** Where a stopped schedule continues (its `last.ckpt`). */
export interface ScheduleResume {
  readonly epoch: number;
  readonly step: number;
  readonly extraTables: readonly ParameterTable[];
  readonly progress: PhaseProgress;
  /** The BPR phase's best epoch when the run stopped in the adversarial phase (-1: unknown). */
  readonly bestBprEpoch: number;
}

/** Options of {@link trainSchedule}. */
export interface ScheduleOptions {
  /**
   * A folder for the checkpoints (`mf-best.ckpt`, `bpr-best.ckpt`, `adversarial-best.ckpt`,
   * `last.ckpt`, `model.ckpt`), with metadata every checkpoint records and, for `last.ckpt`,
   * metadata made at each write (e.g. the history so far).
   */
  readonly checkpoints?: {
    readonly folder: string;
    readonly metadata?: JsonObject;
    readonly resumeMetadata?: () => JsonObject;
  };
  /** Continue a stopped run exactly (the warm start is then part of its checkpoint). */
  readonly resume?: ScheduleResume;
  /** Optimiser state to start the model's trainer from. */
  readonly initialState?: readonly ParameterTable[];
  /** Stops between two epochs: the result says `interrupted`, `last.ckpt` is written. */
  readonly signal?: AbortSignal;
  readonly callbacks?: ScheduleCallbacks;
}

/** What the warm start did. */
export interface WarmStartSummary {
  readonly epochsRun: number;
  /** 0-based; -1 without validation. */
  readonly bestEpoch: number;
  readonly bestValue: number | null;
  readonly metric: string;
  readonly stoppedEarly: boolean;
  readonly seconds: number;
}

/** What {@link trainSchedule} returns. */
export interface ScheduleResult {
  readonly phases: { readonly bpr: PhaseResult | null; readonly adversarial: PhaseResult | null };
  /** 0-based best epochs (-1: no validation; `apr` null without an adversarial phase). */
  readonly bestEpoch: { readonly bpr: number; readonly apr: number | null };
  readonly stoppedEarly: boolean;
  /** Where a stop landed: `null` when the schedule ran to its end. */
  readonly interrupted: ScheduleStageName | null;
  readonly warmStart: WarmStartSummary | null;
  /** The engine of the last stage (null when the model has nothing to train). */
  readonly engine: EngineInfo | null;
  /** The BPR epochs' engine, when `pretraining` gave them a trainer of their own. */
  readonly pretrainingEngine: EngineInfo | null;
}

/**
 * Runs a schedule: warm start, BPR phase, adversarial phase. Checkpoints are written
 * atomically, so a stop (`signal`) leaves the last complete one intact; a stopped run resumes
 * exactly from its `last.ckpt` ({@link ScheduleOptions.resume}).
 */
export async function trainSchedule(
  model: Model,
  dataset: Dataset,
  plan: SchedulePlan,
  options: ScheduleOptions = {},
): Promise<ScheduleResult> {
  const folder = options.checkpoints?.folder;
  if (folder !== undefined) await mkdir(folder, { recursive: true });
  const file = (name: string): string | undefined =>
    folder === undefined ? undefined : join(folder, name);
  const metadata = options.checkpoints?.metadata ?? {};
  const callbacks = options.callbacks ?? {};
  const none: ScheduleResult = {
    phases: { bpr: null, adversarial: null },
    bestEpoch: { bpr: -1, apr: null },
    stoppedEarly: false,
    interrupted: null,
    warmStart: null,
    engine: null,
    pretrainingEngine: null,
  };
  if (model.trainableTables.length === 0) {
    callbacks.onLog?.(`${model.modelName} has nothing to train`);
    const final = file('model.ckpt');
    if (final) await writeCheckpoint(final, model, [], metadata);
    return none;
  }
  const resume = options.resume;
  let initialState = options.initialState;
  let warmStart: WarmStartSummary | null = null;
  if (plan.warmStart && plan.warmStart.epochs > 0 && !resume) {
    const warm = await warmStartFromMf(model, dataset, plan, options);
    if (warm === null) return { ...none, interrupted: 'warm-start' };
    warmStart = warm.summary;
    initialState = warm.state;
  }
  const run = new ScheduleRun(model, dataset, plan, options, file, metadata);
  return { ...(await run.run(initialState)), warmStart };
}

/** The warm start; `null` when the signal stopped it (not resumable: nothing was saved). */
async function warmStartFromMf(
  model: Model,
  dataset: Dataset,
  plan: SchedulePlan,
  options: ScheduleOptions,
): Promise<{ state: ParameterTable[]; summary: WarmStartSummary } | null> {
  if (!(model instanceof VisualBPR))
    throw new ConfigError([
      {
        path: 'warmStart',
        message: `model ${model.modelName} cannot start from an MF-BPR (only a VBPR can)`,
      },
    ]);
  const started = performance.now();
  const mf = new MatrixFactorization(dataset, {
    embeddingSize: model.embeddingSize,
    ...(plan.warmStart?.seed !== undefined ? { seed: plan.warmStart.seed } : {}),
  });
  const { adversarial: _adversarial, ...bpr } = plan.pretraining ?? plan.config;
  const config = configForModel(bpr, mf);
  const stage: ScheduleStage = {
    name: 'warm-start',
    epochs: plan.warmStart!.epochs,
    firstEpoch: 0,
    metric: resolveTrainConfig(config, mf).validation.metric,
    adversary: null,
  };
  const callbacks = options.callbacks ?? {};
  callbacks.onStageStart?.(stage);
  const folder = options.checkpoints?.folder;
  let result: StageResult;
  try {
    result = await trainStage(mf, dataset, config, {
      epochs: stage.epochs,
      adversarial: false,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(folder
        ? {
            checkpoint: join(folder, 'mf-best.ckpt'),
            checkpointMetadata: options.checkpoints?.metadata ?? {},
            finalCheckpoint: false,
          }
        : {}),
      callbacks: {
        ...(callbacks.onLog ? { onLog: callbacks.onLog } : {}),
        onEpochEnd: (event) => callbacks.onEpochEnd?.(event, stage),
      },
    });
  } catch (error) {
    if (options.signal?.aborted) return null;
    throw error;
  }
  const phase = result.phase;
  callbacks.onStageEnd?.(stage, phase);
  model.copyIdEmbeddingsFrom(mf, dataset.train);
  return {
    state: result.optimizerState,
    summary: {
      epochsRun: phase.epochs.length,
      bestEpoch: phase.bestEpoch,
      bestValue: phase.bestEpoch >= 0 ? phase.bestValue : null,
      metric: stage.metric,
      stoppedEarly: phase.stoppedEarly,
      seconds: (performance.now() - started) / 1000,
    },
  };
}

/** The BPR and adversarial phases of one schedule, on one or two trainers. */
class ScheduleRun {
  private trainer: Trainer | null = null;
  private stage: ScheduleStage | null = null;

  constructor(
    private readonly model: Model,
    private readonly dataset: Dataset,
    private readonly plan: SchedulePlan,
    private readonly options: ScheduleOptions,
    private readonly file: (name: string) => string | undefined,
    private readonly metadata: JsonObject,
  ) {}

  private get callbacks(): ScheduleCallbacks {
    return this.options.callbacks ?? {};
  }

  /** The trainer's callbacks, tagged with the running stage. */
  private trainCallbacks(): TrainCallbacks {
    const c = this.callbacks;
    return {
      ...(c.onLog ? { onLog: c.onLog } : {}),
      onEpochEnd: (event) => c.onEpochEnd?.(event, this.stage!),
      onValidation: (event, result) => c.onValidation?.(event, result, this.stage!),
    };
  }

  private async createTrainer(
    config: TrainConfig,
    start?: Parameters<typeof Trainer.create>[4],
  ): Promise<Trainer> {
    return Trainer.create(this.model, this.dataset, config, this.trainCallbacks(), start);
  }

  async run(initialState?: readonly ParameterTable[]): Promise<Omit<ScheduleResult, 'warmStart'>> {
    const { plan, options } = this;
    const resume = options.resume;
    const resumeInApr = resume?.progress.phase === 'apr';
    // With `pretraining` (and no warm start, which spent it on the MF), the BPR epochs have a
    // trainer of their own.
    const pretraining =
      plan.warmStart && plan.warmStart.epochs > 0 ? null : (plan.pretraining ?? null);
    this.trainer = await this.createTrainer(
      pretraining && !resumeInApr ? pretraining : plan.config,
      resume
        ? { extraTables: resume.extraTables, epoch: resume.epoch, step: resume.step }
        : initialState
          ? { extraTables: initialState }
          : undefined,
    );
    let pretrainingEngine: EngineInfo | null = null;
    let bpr: PhaseResult | null = null;
    let adversarial: PhaseResult | null = null;
    let bestBpr = -1;
    let current: ScheduleStageName = resumeInApr ? 'adversarial' : 'bpr';
    try {
      if (!resumeInApr) {
        bpr = await this.phase('bpr', plan.bprEpochs, false);
        bestBpr = bpr.bestEpoch;
      } else bestBpr = resume!.bestBprEpoch;
      if (plan.adversarialEpochs > 0) {
        current = 'adversarial';
        if (pretraining && !resumeInApr) {
          const epoch = this.trainer.epoch;
          pretrainingEngine = this.trainer.engineInfo;
          await this.trainer.close();
          this.trainer = null;
          this.trainer = await this.createTrainer(plan.config, { epoch });
        }
        adversarial = await this.phase('adversarial', plan.adversarialEpochs, true);
      }
      const final = this.file('model.ckpt');
      if (final) await this.trainer.save(final, this.metadata);
    } catch (error) {
      if (!options.signal?.aborted || this.trainer === null) throw error;
      // Stopped between two epochs: the tables are consistent; keep them as the last checkpoint.
      this.callbacks.onLog?.(
        `interrupted after epoch ${this.trainer.epoch}; saving checkpoints/last.ckpt`,
      );
      const last = this.file('last.ckpt');
      if (last)
        await this.trainer.save(last, {
          ...this.metadata,
          ...(options.checkpoints?.resumeMetadata?.() ?? {}),
          interrupted: true,
        });
      return this.result(bpr, adversarial, bestBpr, current, pretrainingEngine);
    } finally {
      await this.trainer?.close();
    }
    return this.result(bpr, adversarial, bestBpr, null, pretrainingEngine);
  }

  private result(
    bpr: PhaseResult | null,
    adversarial: PhaseResult | null,
    bestBpr: number,
    interrupted: ScheduleStageName | null,
    pretrainingEngine: EngineInfo | null,
  ): Omit<ScheduleResult, 'warmStart'> {
    return {
      phases: { bpr, adversarial },
      bestEpoch: { bpr: bestBpr, apr: adversarial ? adversarial.bestEpoch : null },
      stoppedEarly: (bpr?.stoppedEarly ?? false) || (adversarial?.stoppedEarly ?? false),
      interrupted,
      engine: this.trainer?.engineInfo ?? null,
      pretrainingEngine,
    };
  }

  /** One phase: its best checkpoint, `last.ckpt` every few epochs, a stop between epochs. */
  private async phase(
    name: 'bpr' | 'adversarial',
    epochs: number,
    isAdversarial: boolean,
  ): Promise<PhaseResult> {
    const trainer = this.trainer!;
    const { resume, signal, checkpoints } = this.options;
    const continued =
      resume !== undefined && resume.progress.phase === (isAdversarial ? 'apr' : 'bpr');
    this.stage = {
      name,
      epochs,
      firstEpoch: continued ? resume.epoch - resume.progress.epochsDone : trainer.epoch,
      metric: trainer.config.validation.metric,
      adversary: isAdversarial ? trainer.config.adversarial.adversary : null,
    };
    this.callbacks.onStageStart?.(this.stage);
    const bestFile = this.file(isAdversarial ? 'adversarial-best.ckpt' : 'bpr-best.ckpt');
    const bestTables =
      continued && bestFile && resume.progress.bestEpoch >= 0 && existsSync(bestFile)
        ? restoreModel((await readCheckpoint(bestFile)).model).tables
        : undefined;
    const last = this.file('last.ckpt');
    const every = this.plan.checkpointEvery ?? 0;
    const result = await trainer.runPhase({
      ...(signal ? { signal } : {}),
      epochs,
      adversarial: isAdversarial,
      ...(bestFile ? { checkpoint: bestFile, checkpointMetadata: this.metadata } : {}),
      ...(last && every > 0
        ? {
            periodicCheckpoint: {
              file: last,
              every,
              metadata: () => ({ ...this.metadata, ...(checkpoints?.resumeMetadata?.() ?? {}) }),
            },
          }
        : {}),
      ...(continued
        ? { resume: { progress: resume.progress, ...(bestTables ? { bestTables } : {}) } }
        : {}),
    });
    this.callbacks.onStageEnd?.(this.stage, result);
    return result;
  }
}
