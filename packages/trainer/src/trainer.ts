import { AdvrecError, ConfigError, Random, TripleSampler, firstNonFinite } from '@advrec/data';
import type { Dataset } from '@advrec/data';
import { getAdversary } from '@advrec/adversary';
import { evaluateFullRanking, parseMetricKey } from '@advrec/metrics';
import type { EvaluationResult, MetricName } from '@advrec/metrics';
import { cloneTable, writeCheckpoint } from '@advrec/models';
import type { JsonObject, Model, ParameterTable } from '@advrec/models';
import { resolveTrainConfig } from './config.js';
import type { ResolvedTrainConfig, TrainConfig } from './config.js';
import { selectEngineProvider } from './engine.js';
import type { Engine, EngineInfo, EpochStats } from './engine.js';
import './providers.js';
import { createOptimizerState, optimizerTables } from './optimizer.js';
import type { OptimizerState } from './optimizer.js';

const DIVERGED = Symbol.for('advrec.error.TrainingDivergedError');

/** The loss, a parameter table or the optimiser state stopped being finite. */
export class TrainingDivergedError extends AdvrecError {
  readonly [DIVERGED] = true;

  constructor(
    message: string,
    /** The epoch that produced it. */
    readonly epoch: number,
    /** The first table with a NaN or infinity (null when only the loss is). */
    readonly table: string | null,
  ) {
    super(message);
    this.name = 'TrainingDivergedError';
  }

  static override isInstance(value: unknown): value is TrainingDivergedError {
    return typeof value === 'object' && value !== null && DIVERGED in value;
  }
}

/** What `onEpochEnd` receives. */
export interface EpochEvent extends EpochStats {
  /** Epoch number (continues across phases and resumed runs). */
  readonly epoch: number;
  /** `bpr` or `apr`. */
  readonly phase: 'bpr' | 'apr';
  /** `||P||^2 + ||Q||^2`-style squared norm of every trainable table (APR Figure 7). */
  readonly parameterNorm: number;
}

/** What `onValidation` receives. */
export interface ValidationEvent {
  readonly epoch: number;
  readonly phase: 'bpr' | 'apr';
  readonly metrics: Readonly<Record<string, number>>;
  /** The early-stopping metric's value. */
  readonly value: number;
  /** Whether this is the best value so far (a best checkpoint was written). */
  readonly improved: boolean;
  readonly seconds: number;
}

/** Subscribers to training events (progress bars, logs, history are subscribers). */
export interface TrainCallbacks {
  onEpochEnd?(event: EpochEvent): void | Promise<void>;
  onValidation?(event: ValidationEvent, result: EvaluationResult): void | Promise<void>;
  /** Called with messages for the log (the engine in use, once; it is also {@link Trainer.engineInfo}). */
  onLog?(message: string): void;
}

/** A phase of the schedule. */
export interface PhaseOptions {
  readonly epochs: number;
  readonly adversarial: boolean;
  /** Write the best model here (atomically), with its config, when validation improves. */
  readonly checkpoint?: string;
  /** Extra metadata of that checkpoint (e.g. the data set's fingerprint). */
  readonly checkpointMetadata?: JsonObject;
  /** Put the best validated tables back into the model at the end of the phase (default true when validating). */
  readonly restoreBest?: boolean;
  /** Skip validation in this phase. */
  readonly validate?: boolean;
  /**
   * Stops the phase between two epochs (the epoch in progress finishes, so the model, the
   * optimiser state and {@link Trainer.epoch} agree and a checkpoint saved then resumes
   * exactly): the phase rejects with the signal's reason.
   */
  readonly signal?: AbortSignal;
  /**
   * Continue a phase stopped earlier: its progress as a checkpoint recorded it
   * (`metadata.phaseProgress`, see {@link Trainer.phaseProgress}) and, for `restoreBest`, the
   * best tables so far (from the phase's best checkpoint). `epochs` stays the phase's total.
   */
  readonly resume?: {
    readonly progress: PhaseProgress;
    readonly bestTables?: readonly ParameterTable[];
  };
  /**
   * Also write a resumable checkpoint here every `every` epochs (after that epoch's
   * validation); `metadata` may be a function, called at each save (e.g. the history so far).
   */
  readonly periodicCheckpoint?: {
    readonly file: string;
    readonly every: number;
    readonly metadata?: JsonObject | (() => JsonObject);
  };
}

/**
 * Where a phase stands: saved in every checkpoint the trainer writes, so a stopped run
 * resumes exactly (same validation cadence, same best-so-far, same patience count).
 */
export interface PhaseProgress {
  readonly phase: 'bpr' | 'apr';
  /** Epochs of the phase completed. */
  readonly epochsDone: number;
  /** Best validation value so far (null before the first validation). */
  readonly bestValue: number | null;
  readonly bestEpoch: number;
  /** Validations since the best one (early-stopping patience). */
  readonly sinceBest: number;
}

/** The outcome of a phase. */
export interface PhaseResult {
  readonly epochs: EpochEvent[];
  readonly validations: ValidationEvent[];
  /** Best validation value and epoch (NaN / -1 without validation). */
  readonly bestValue: number;
  readonly bestEpoch: number;
  readonly stoppedEarly: boolean;
  /** Where the phase's wall time went. */
  readonly timings: PhaseTimings;
}

/** Where a phase's wall time went, in seconds (the parts add up to about `total`). */
export interface PhaseTimings {
  readonly total: number;
  /** The engine's epochs (sampling and kernel), `copy` included. */
  readonly training: number;
  /** Of `training`: copying tables into and out of a fused kernel's memory. */
  readonly copy: number;
  /** The per-epoch checks: parameter norm, non-finite optimiser state. */
  readonly checks: number;
  /** `onEpochEnd` and `onValidation` callbacks (progress output, run records). */
  readonly callbacks: number;
  readonly validation: number;
  /** Keeping the best tables in memory and writing checkpoints. */
  readonly checkpoints: number;
  /** From the phase's start to the end of its best validation (NaN without validation). */
  readonly untilBest: number;
}

/**
 * Trains a model on a dataset: phases of BPR or APR epochs (APR Algorithm 1: BPR
 * pre-training, then adversarial training from the BPR parameters), validation with early
 * stopping, best-model checkpoints and events. The model's tables are updated in place.
 *
 * ```ts
 * const trainer = await Trainer.create(model, dataset, { validation: { every: 20 } });
 * await trainer.runPhase({ epochs: 1000, adversarial: false });   // MF-BPR
 * await trainer.runPhase({ epochs: 1000, adversarial: true });    // AMF
 * await trainer.close();
 * ```
 */
export class Trainer {
  readonly model: Model;
  readonly dataset: Dataset;
  readonly config: ResolvedTrainConfig;
  /** Optimiser state per trainable table (checkpointed with the model). */
  readonly optimizerStates: readonly OptimizerState[];
  /** The next epoch number. */
  epoch: number;
  private readonly engine: Engine;
  private readonly callbacks: TrainCallbacks;
  private readonly metricName: MetricName;

  private constructor(
    model: Model,
    dataset: Dataset,
    config: ResolvedTrainConfig,
    states: OptimizerState[],
    engine: Engine,
    callbacks: TrainCallbacks,
    epoch: number,
  ) {
    this.model = model;
    this.dataset = dataset;
    this.config = config;
    this.optimizerStates = states;
    this.engine = engine;
    this.callbacks = callbacks;
    this.epoch = epoch;
    this.metricName = parseMetricKey(config.validation.metric)!.metric;
  }

  private currentPhase: PhaseProgress | null = null;

  /**
   * Builds the trainer and its engine. `resume` restores optimiser state (tables named as
   * {@link optimizerTables} writes them, e.g. from a checkpoint's extra tables), the epoch
   * counter and the optimiser step.
   */
  static async create(
    model: Model,
    dataset: Dataset,
    config: TrainConfig = {},
    callbacks: TrainCallbacks = {},
    resume?: { extraTables?: readonly ParameterTable[]; epoch?: number; step?: number },
  ): Promise<Trainer> {
    const resolved = resolveTrainConfig(config, model);
    if (model.numUsers !== dataset.numUsers || model.numItems !== dataset.numItems)
      throw new ConfigError([
        {
          path: 'model',
          message: `model has ${model.numUsers} users x ${model.numItems} items, dataset ${dataset.name} has ${dataset.numUsers} x ${dataset.numItems}`,
        },
      ]);
    if (
      resolved.validation.split === 'validation' &&
      dataset.validation === null &&
      config.validation !== undefined
    )
      throw new ConfigError([
        { path: 'validation.split', message: `dataset ${dataset.name} has no validation split` },
      ]);
    const states = model.trainableTables.map((name) => {
      const table = model.tables.find((t) => t.name === name)!;
      const state = createOptimizerState(resolved.optimizer, table);
      for (const saved of resume?.extraTables ?? []) {
        const target =
          state.state1?.name === saved.name
            ? state.state1
            : state.state2?.name === saved.name
              ? state.state2
              : null;
        if (target) {
          if (target.values.length !== saved.values.length)
            throw new ConfigError([
              {
                path: `resume.${saved.name}`,
                message: 'optimiser state shape does not match the model',
              },
            ]);
          target.values.set(saved.values);
        }
      }
      return state;
    });
    const sampler = new TripleSampler(dataset.train, {
      seed: resolved.seed,
      batchSize: resolved.batchSize,
      order: resolved.sampling,
      userIds: dataset.userIdMap,
    });
    const adversary = getAdversary(resolved.adversarial.adversary);
    const provider = selectEngineProvider(model, adversary, resolved);
    const engine = await provider.create({
      model,
      sampler,
      config: resolved,
      adversary,
      states,
      step: resume?.step ?? 0,
    });
    callbacks.onLog?.(`engine: ${engine.info.description}`);
    return new Trainer(model, dataset, resolved, states, engine, callbacks, resume?.epoch ?? 0);
  }

  /** Optimiser steps taken (Adam's bias correction counts them). */
  get step(): number {
    return this.engine.step;
  }

  /** The engine in use (provider name, threads, details), for run records. */
  get engineInfo(): EngineInfo {
    return this.engine.info;
  }

  /** Runs one phase: `epochs` BPR or APR epochs with validation and early stopping. */
  async runPhase(options: PhaseOptions): Promise<PhaseResult> {
    if (!Number.isInteger(options.epochs) || options.epochs < 0)
      throw new ConfigError([
        { path: 'epochs', message: `must be a non-negative integer, got ${options.epochs}` },
      ]);
    const phase = options.adversarial ? 'apr' : 'bpr';
    const validate =
      options.validate !== false &&
      (this.config.validation.split === 'test' || this.dataset.validation !== null);
    const restoreBest = options.restoreBest ?? validate;
    const epochs: EpochEvent[] = [];
    const validations: ValidationEvent[] = [];
    const resumed = options.resume?.progress;
    if (resumed && resumed.phase !== phase)
      throw new ConfigError([
        {
          path: 'resume.progress.phase',
          message: `the checkpoint stopped in a ${resumed.phase} phase, this phase is ${phase}`,
        },
      ]);
    let bestValue = resumed?.bestValue ?? Number.NEGATIVE_INFINITY;
    let bestEpoch = resumed?.bestEpoch ?? -1;
    let bestTables: ParameterTable[] | null =
      restoreBest && options.resume?.bestTables ? options.resume.bestTables.map(cloneTable) : null;
    let sinceBest = resumed?.sinceBest ?? 0;
    let stoppedEarly = false;
    const progress = (epochsDone: number): PhaseProgress => ({
      phase,
      epochsDone,
      bestValue: bestEpoch >= 0 ? bestValue : null,
      bestEpoch,
      sinceBest,
    });
    this.currentPhase = progress(resumed?.epochsDone ?? 0);
    const phaseStarted = performance.now();
    const spent = { training: 0, copy: 0, checks: 0, callbacks: 0, validation: 0, checkpoints: 0 };
    let untilBest = Number.NaN;
    const timed = async <T>(part: keyof typeof spent, work: () => T | Promise<T>): Promise<T> => {
      const started = performance.now();
      try {
        return await work();
      } finally {
        spent[part] += (performance.now() - started) / 1000;
      }
    };
    for (let e = resumed?.epochsDone ?? 0; e < options.epochs; e++) {
      options.signal?.throwIfAborted();
      const stats = await timed('training', () =>
        this.engine.trainEpoch(this.epoch, options.adversarial),
      );
      spent.copy += stats.copySeconds ?? 0;
      const [parameterNorm, stateFinite] = await timed('checks', () => [
        stats.parameterNorm ?? this.parameterNorm(),
        this.optimizerStateFinite(),
      ]);
      const event: EpochEvent = { ...stats, epoch: this.epoch, phase, parameterNorm };
      this.epoch++;
      if (!Number.isFinite(stats.loss) || !Number.isFinite(parameterNorm) || !stateFinite)
        throw this.divergence(event.epoch, stats.loss);
      epochs.push(event);
      await timed('callbacks', () => this.callbacks.onEpochEnd?.(event));
      const last = e === options.epochs - 1;
      if (validate && ((e + 1) % this.config.validation.every === 0 || last)) {
        const result = await timed('validation', () => this.evaluate());
        const value = result.metrics[this.config.validation.metric] ?? Number.NaN;
        const improved = value > bestValue;
        if (improved) {
          bestValue = value;
          bestEpoch = event.epoch;
          sinceBest = 0;
          // Only what training changes: fixed tables (VBPR's item features, often the largest
          // table by far) are never copied.
          if (restoreBest)
            bestTables = await timed('checkpoints', () =>
              this.model.tables
                .filter((t) => this.model.trainableTables.includes(t.name))
                .map(cloneTable),
            );
        } else sinceBest++;
        // Before the best checkpoint is written: it records the progress it belongs to.
        this.currentPhase = progress(e + 1);
        if (improved && options.checkpoint)
          await timed('checkpoints', () =>
            this.save(options.checkpoint!, {
              ...options.checkpointMetadata,
              bestEpoch: event.epoch,
              bestValue: value,
            }),
          );
        if (improved) untilBest = (performance.now() - phaseStarted) / 1000;
        const v: ValidationEvent = {
          epoch: event.epoch,
          phase,
          metrics: result.metrics,
          value,
          improved,
          seconds: result.seconds,
        };
        validations.push(v);
        await timed('callbacks', () => this.callbacks.onValidation?.(v, result));
        if (sinceBest >= this.config.validation.patience) {
          stoppedEarly = true;
          break;
        }
      }
      this.currentPhase = progress(e + 1);
      const periodic = options.periodicCheckpoint;
      if (periodic && periodic.every > 0 && (e + 1) % periodic.every === 0)
        await timed('checkpoints', () =>
          this.save(
            periodic.file,
            typeof periodic.metadata === 'function'
              ? periodic.metadata()
              : { ...periodic.metadata },
          ),
        );
      // Let timers and I/O run between epochs (progress output, Ctrl-C handlers).
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (restoreBest && bestTables) {
      for (const saved of bestTables)
        this.model.tables.find((t) => t.name === saved.name)!.values.set(saved.values);
    }
    return {
      epochs,
      validations,
      bestValue: bestEpoch >= 0 ? bestValue : Number.NaN,
      bestEpoch,
      stoppedEarly,
      timings: { total: (performance.now() - phaseStarted) / 1000, ...spent, untilBest },
    };
  }

  /** Full-ranking evaluation on the validation split (or test, as configured). */
  evaluate(): Promise<EvaluationResult> {
    const v = this.config.validation;
    const cutoffs = [...new Set([...v.cutoffs, parseMetricKey(v.metric)!.cutoff])].sort(
      (a, b) => a - b,
    );
    const metrics = [...new Set<MetricName>([this.metricName, 'hr', 'ndcg', 'recall'])];
    return evaluateFullRanking(this.model, this.dataset, {
      split: v.split,
      cutoffs,
      metrics,
      threads: v.threads,
      ...(v.users === null ? {} : { users: this.validationUsers(v.users) }),
    });
  }

  private sampledValidationUsers: Int32Array | null = null;

  /** The fixed sample of `size` users with items in the validation split (drawn once, from the seed). */
  private validationUsers(size: number): Int32Array {
    if (this.sampledValidationUsers) return this.sampledValidationUsers;
    const split =
      this.config.validation.split === 'test' ? this.dataset.test : this.dataset.validation!;
    const candidates: number[] = [];
    for (let u = 0; u < split.numUsers; u++)
      if (split.indptr[u + 1]! > split.indptr[u]!) candidates.push(u);
    const order = Int32Array.from(candidates);
    if (size < order.length) new Random(this.config.seed).shuffle(order);
    this.sampledValidationUsers = order.subarray(0, Math.min(size, order.length)).sort();
    return this.sampledValidationUsers;
  }

  /**
   * Where the current (or last) phase stands: what a checkpoint needs to resume it exactly
   * ({@link PhaseOptions.resume}). `null` before the first phase.
   */
  get phaseProgress(): PhaseProgress | null {
    return this.currentPhase;
  }

  /** Writes a checkpoint (model, optimiser state, config, epoch, phase progress), atomically. */
  async save(file: string, extra: JsonObject = {}): Promise<void> {
    await writeCheckpoint(file, this.model, optimizerTables(this.optimizerStates), {
      trainConfig: this.config as unknown as JsonObject,
      epoch: this.epoch,
      step: this.step,
      dataset: this.dataset.name,
      ...(this.currentPhase ? { phaseProgress: { ...this.currentPhase } } : {}),
      ...extra,
    });
  }

  /**
   * The error for a run whose loss or parameters stopped being finite: names the epoch, the
   * first table (or optimiser state) with a NaN or infinity, and what to change.
   */
  private divergence(epoch: number, loss: number): TrainingDivergedError {
    const tables = [
      ...this.model.trainableTables.map((name) => this.model.tables.find((t) => t.name === name)!),
      ...this.optimizerStates.flatMap((s) => [s.state1, s.state2]).filter((t) => t !== null),
    ];
    const bad = tables.find((t) => firstNonFinite(t.values) >= 0);
    const where = bad
      ? `table ${bad.name} holds ${bad.values[firstNonFinite(bad.values)]}`
      : Number.isFinite(loss)
        ? 'the squared norm of the parameters overflows (values beyond 1e154)'
        : `the loss is ${loss}`;
    const features = this.model.surfaces.some((s) => s.name === 'itemFeatures');
    return new TrainingDivergedError(
      `training diverged at epoch ${epoch}: ${where}; lower optimizer.learningRate (now ${this.config.optimizer.learningRate})${features ? ', scale the item features down (e.g. unit norm per row)' : ''}${this.config.adversarial.epsilon > 0 ? `, or lower adversarial.epsilon (now ${this.config.adversarial.epsilon})` : ''}`,
      epoch,
      bad?.name ?? null,
    );
  }

  /** Whether every optimiser state value is finite. */
  private optimizerStateFinite(): boolean {
    return this.optimizerStates.every((state) =>
      [state.state1, state.state2].every((t) => t === null || firstNonFinite(t.values) < 0),
    );
  }

  private parameterNorm(): number {
    let s = 0;
    for (const name of this.model.trainableTables) {
      const values = this.model.tables.find((t) => t.name === name)!.values;
      for (let k = 0; k < values.length; k++) s += values[k]! * values[k]!;
    }
    return s;
  }

  /** Stops worker threads. */
  async close(): Promise<void> {
    await this.engine.close();
  }
}
