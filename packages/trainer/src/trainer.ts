import { availableParallelism } from 'node:os';
import { ConfigError, TripleSampler } from '@advrec/data';
import type { ConfigIssue, Dataset } from '@advrec/data';
import { getAdversary } from '@advrec/adversary';
import type { Adversary } from '@advrec/adversary';
import { evaluateFullRanking } from '@advrec/metrics';
import type { EvaluationResult, MetricName } from '@advrec/metrics';
import { MatrixFactorization, VisualBPR, cloneTable, writeCheckpoint } from '@advrec/models';
import type { JsonObject, Model, ParameterTable } from '@advrec/models';
import { GenericEngine } from './generic-engine.js';
import { MfEngine } from './mf-engine.js';
import { VisualEngine } from './visual-engine.js';
import { TfjsModel } from './tfjs-model.js';
import type { EpochStats } from './mf-engine.js';
import { createOptimizerState, optimizerTables, resolveOptimizerConfig } from './optimizer.js';
import type { OptimizerConfig, OptimizerState, ResolvedOptimizerConfig } from './optimizer.js';

/** The adversarial part of APR (Eq. 4-5). */
export interface AdversarialConfig {
  /** Registered adversary (default `fgm`, the paper's). */
  readonly adversary?: string;
  /** Perturbation norm bound per row (default 0.5, the paper's). */
  readonly epsilon?: number;
  /** lambda, the weight of the adversarial regulariser (default 1, the paper's). */
  readonly adversarialWeight?: number;
  /** Surfaces to perturb (default: every surface of the model; MF: both embeddings). */
  readonly surfaces?: readonly string[];
}

/** Validation and early stopping. */
export interface ValidationConfig {
  /** Validate every N epochs (default 10). */
  readonly every?: number;
  /** Split to validate on (default `validation`; the dataset must have one). */
  readonly split?: 'validation' | 'test';
  /** Metric driving early stopping and the best checkpoint, `name@K` (default `ndcg@100`, the APR tuning metric). */
  readonly metric?: string;
  /** Other cutoffs to report (default the metric's). */
  readonly cutoffs?: readonly number[];
  /** Validations without improvement before stopping (default: never stop early). */
  readonly patience?: number;
  /** Evaluation threads (default: all cores). */
  readonly threads?: number;
}

/** Everything about how a model is trained. Every field has the papers' default. */
export interface TrainConfig {
  /** Seed of the sampler and of random adversaries (default 0). */
  readonly seed?: number;
  /** Triples per mini-batch (default 512). */
  readonly batchSize?: number;
  /** lambda_Theta, L2 on the batch's rows (default 0, the APR code's). */
  readonly l2?: number;
  readonly optimizer?: OptimizerConfig;
  readonly adversarial?: AdversarialConfig;
  /** `shuffle` (each interaction once per epoch, the papers' code) or `with-replacement`. */
  readonly sampling?: 'shuffle' | 'with-replacement';
  /** Threads for the fused MF kernel (default: all cores). */
  readonly threads?: number;
  /** `deterministic` (default, bit-identical for any thread count) or `hogwild` (opt-in, faster, not reproducible). */
  readonly mode?: 'deterministic' | 'hogwild';
  /** `minibatch` (default) or `sgd-triples` (classic per-triple SGD BPR; BPR epochs only, SGD only). */
  readonly algorithm?: 'minibatch' | 'sgd-triples';
  /**
   * `auto` (the fused kernel for MF with a built-in adversary, the visual engine for VBPR,
   * else generic), `fused`, `visual` or `generic`.
   */
  readonly engine?: 'auto' | 'fused' | 'visual' | 'generic';
  readonly validation?: ValidationConfig;
}

/** A fully resolved training config (what run folders and checkpoints record). */
export interface ResolvedTrainConfig {
  readonly seed: number;
  readonly batchSize: number;
  readonly l2: number;
  readonly optimizer: ResolvedOptimizerConfig;
  readonly adversarial: {
    readonly adversary: string;
    readonly epsilon: number;
    readonly adversarialWeight: number;
    readonly surfaces: readonly string[];
  };
  readonly sampling: 'shuffle' | 'with-replacement';
  readonly threads: number;
  readonly mode: 'deterministic' | 'hogwild';
  readonly algorithm: 'minibatch' | 'sgd-triples';
  readonly engine: 'fused' | 'visual' | 'generic';
  readonly validation: {
    readonly every: number;
    readonly split: 'validation' | 'test';
    readonly metric: string;
    readonly cutoffs: readonly number[];
    readonly patience: number;
    readonly threads: number;
  };
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
  /** Called with a message naming the engine and backend in use. */
  onLog?(message: string): void;
}

/** A phase of the schedule. */
export interface PhaseOptions {
  readonly epochs: number;
  readonly adversarial: boolean;
  /** Write the best model here (atomically), with its config, when validation improves. */
  readonly checkpoint?: string;
  /** Put the best validated tables back into the model at the end of the phase (default true when validating). */
  readonly restoreBest?: boolean;
  /** Skip validation in this phase. */
  readonly validate?: boolean;
}

/** The outcome of a phase. */
export interface PhaseResult {
  readonly epochs: EpochEvent[];
  readonly validations: ValidationEvent[];
  /** Best validation value and epoch (NaN / -1 without validation). */
  readonly bestValue: number;
  readonly bestEpoch: number;
  readonly stoppedEarly: boolean;
}

const BUILT_IN_FUSED = new Set(['none', 'fgm', 'fgsm', 'random']);

/** Validates and fills every default; reports every problem with its field path at once. */
export function resolveTrainConfig(config: TrainConfig = {}, model?: Model): ResolvedTrainConfig {
  const issues: ConfigIssue[] = [];
  const int = (path: string, value: number, min: number): void => {
    if (!Number.isInteger(value) || value < min)
      issues.push({ path, message: `must be an integer >= ${min}, got ${value}` });
  };
  const seed = config.seed ?? 0;
  const batchSize = config.batchSize ?? 512;
  const l2 = config.l2 ?? 0;
  int('seed', seed, 0);
  int('batchSize', batchSize, 1);
  if (!(Number.isFinite(l2) && l2 >= 0))
    issues.push({ path: 'l2', message: `must be a finite number >= 0, got ${l2}` });
  const optimizer = resolveOptimizerConfig(config.optimizer, issues);
  const adversary = config.adversarial?.adversary ?? 'fgm';
  const epsilon = config.adversarial?.epsilon ?? 0.5;
  const adversarialWeight = config.adversarial?.adversarialWeight ?? 1;
  if (!(Number.isFinite(epsilon) && epsilon >= 0))
    issues.push({
      path: 'adversarial.epsilon',
      message: `must be a finite number >= 0, got ${epsilon}`,
    });
  if (!(Number.isFinite(adversarialWeight) && adversarialWeight >= 0))
    issues.push({
      path: 'adversarial.adversarialWeight',
      message: `must be a finite number >= 0, got ${adversarialWeight}`,
    });
  let multiStep = false;
  try {
    multiStep = (getAdversary(adversary).steps ?? 1) > 1;
  } catch (error) {
    if (ConfigError.isInstance(error))
      issues.push({ path: 'adversarial.adversary', message: error.issues[0]!.message });
    else throw error;
  }
  const surfaces = config.adversarial?.surfaces ?? model?.surfaces.map((s) => s.name) ?? [];
  if (model)
    surfaces.forEach((name, index) => {
      if (!model.surfaces.some((s) => s.name === name))
        issues.push({
          path: `adversarial.surfaces[${index}]`,
          message: `model ${model.modelName} has no surface "${name}"; it has ${model.surfaces.map((s) => s.name).join(', ') || 'none'}`,
        });
    });
  const sampling = config.sampling ?? 'shuffle';
  if (sampling !== 'shuffle' && sampling !== 'with-replacement')
    issues.push({
      path: 'sampling',
      message: `must be shuffle or with-replacement, got ${String(sampling)}`,
    });
  const threads = config.threads ?? availableParallelism();
  int('threads', threads, 1);
  const mode = config.mode ?? 'deterministic';
  if (mode !== 'deterministic' && mode !== 'hogwild')
    issues.push({ path: 'mode', message: `must be deterministic or hogwild, got ${String(mode)}` });
  const algorithm = config.algorithm ?? 'minibatch';
  if (algorithm !== 'minibatch' && algorithm !== 'sgd-triples')
    issues.push({
      path: 'algorithm',
      message: `must be minibatch or sgd-triples, got ${String(algorithm)}`,
    });
  if (algorithm === 'sgd-triples' && optimizer.name !== 'sgd')
    issues.push({
      path: 'algorithm',
      message: 'sgd-triples (classic per-triple SGD) needs optimizer.name = sgd',
    });
  const requested = config.engine ?? 'auto';
  if (!['auto', 'fused', 'generic'].includes(requested))
    issues.push({
      path: 'engine',
      message: `must be auto, fused or generic, got ${String(requested)}`,
    });
  const fusable =
    (model === undefined || model instanceof MatrixFactorization) && BUILT_IN_FUSED.has(adversary);
  if (multiStep && (requested === 'fused' || requested === 'visual'))
    issues.push({
      path: 'engine',
      message: `adversary ${adversary} takes several gradient steps; it runs on the generic engine (engine "generic" or "auto")`,
    });
  if (requested === 'fused' && !fusable)
    issues.push({
      path: 'engine',
      message:
        'the fused kernel trains MF with a built-in adversary (none, fgm, fgsm, random); use engine "generic"',
    });
  if (algorithm === 'sgd-triples' && requested === 'generic')
    issues.push({ path: 'engine', message: 'sgd-triples runs on the fused MF kernel only' });
  const visual = model instanceof VisualBPR;
  if (requested === 'visual' && model !== undefined && !visual)
    issues.push({ path: 'engine', message: 'the visual engine trains VBPR models' });
  const engine =
    requested === 'generic' || multiStep
      ? 'generic'
      : visual || requested === 'visual'
        ? 'visual'
        : fusable && model !== undefined
          ? 'fused'
          : requested === 'fused'
            ? 'fused'
            : 'generic';
  const v = config.validation ?? {};
  const metric = v.metric ?? 'ndcg@100';
  const match = /^([a-z]+)@(\d+)$/.exec(metric);
  if (!match || !['hr', 'recall', 'precision', 'ndcg', 'mrr', 'map'].includes(match[1]!))
    issues.push({
      path: 'validation.metric',
      message: `must look like ndcg@100 (hr, recall, precision, ndcg, mrr, map), got ${metric}`,
    });
  const validation = {
    every: v.every ?? 10,
    split: v.split ?? 'validation',
    metric,
    cutoffs: v.cutoffs ?? (match ? [Number(match[2])] : [100]),
    patience: v.patience ?? Number.POSITIVE_INFINITY,
    threads: v.threads ?? availableParallelism(),
  } as const;
  int('validation.every', validation.every, 1);
  if (validation.split !== 'validation' && validation.split !== 'test')
    issues.push({
      path: 'validation.split',
      message: `must be validation or test, got ${String(validation.split)}`,
    });
  if (!(validation.patience >= 1))
    issues.push({
      path: 'validation.patience',
      message: `must be >= 1, got ${validation.patience}`,
    });
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    seed,
    batchSize,
    l2,
    optimizer,
    adversarial: { adversary, epsilon, adversarialWeight, surfaces },
    sampling,
    threads,
    mode: algorithm === 'sgd-triples' ? 'hogwild' : mode,
    algorithm,
    engine,
    validation,
  };
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
  private readonly engine: MfEngine | GenericEngine | VisualEngine;
  private readonly callbacks: TrainCallbacks;
  private readonly metricName: MetricName;

  private constructor(
    model: Model,
    dataset: Dataset,
    config: ResolvedTrainConfig,
    states: OptimizerState[],
    engine: MfEngine | GenericEngine | VisualEngine,
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
    this.metricName = config.validation.metric.split('@')[0] as MetricName;
  }

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
    });
    const step = resume?.step ?? 0;
    let engine: MfEngine | GenericEngine | VisualEngine;
    if (resolved.engine === 'fused') {
      const mf = model as MatrixFactorization;
      const surfaces = resolved.adversarial.surfaces;
      engine = await MfEngine.create(
        mf,
        sampler,
        {
          threads: resolved.threads,
          mode: resolved.mode,
          algorithm: resolved.algorithm,
          optimizer: resolved.optimizer,
          userState: states[0]!,
          itemState: states[1]!,
          l2: resolved.l2,
          epsilon: resolved.adversarial.epsilon,
          adversarialWeight: resolved.adversarial.adversarialWeight,
          adversary: resolved.adversarial.adversary as 'fgm',
          perturbUsers: surfaces.includes('userEmbeddings'),
          perturbItems: surfaces.includes('itemEmbeddings'),
          seed: resolved.seed,
        },
        step,
      );
    } else if (resolved.engine === 'visual') {
      engine = await VisualEngine.create(
        model as VisualBPR,
        sampler,
        {
          optimizer: resolved.optimizer,
          states,
          l2: resolved.l2,
          epsilon: resolved.adversarial.epsilon,
          adversarialWeight: resolved.adversarial.adversarialWeight,
          adversary: getAdversary(resolved.adversarial.adversary),
          surfaces: resolved.adversarial.surfaces,
          seed: resolved.seed,
          threads: resolved.threads,
        },
        step,
      );
    } else {
      const adversary: Adversary = getAdversary(resolved.adversarial.adversary);
      engine = new GenericEngine(
        model,
        sampler,
        {
          optimizer: resolved.optimizer,
          states,
          l2: resolved.l2,
          epsilon: resolved.adversarial.epsilon,
          adversarialWeight: resolved.adversarial.adversarialWeight,
          adversary,
          surfaces: resolved.adversarial.surfaces,
          seed: resolved.seed,
        },
        step,
      );
    }
    callbacks.onLog?.(
      engine instanceof MfEngine
        ? `engine: fused MF kernel, ${resolved.threads} thread(s), ${resolved.mode}, ${resolved.algorithm}, ${resolved.optimizer.name}`
        : engine instanceof VisualEngine
          ? `engine: visual (dense products on ${engine.denseBackend}), ${resolved.optimizer.name}, perturbing ${resolved.adversarial.surfaces.join(', ')}`
          : `engine: generic (model contract${model instanceof TfjsModel ? `, tfjs on the ${model.backend} backend` : ''}), 1 thread, ${resolved.optimizer.name}`,
    );
    return new Trainer(model, dataset, resolved, states, engine, callbacks, resume?.epoch ?? 0);
  }

  /** Optimiser steps taken (Adam's bias correction counts them). */
  get step(): number {
    return this.engine.step;
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
    let bestValue = Number.NEGATIVE_INFINITY;
    let bestEpoch = -1;
    let bestTables: ParameterTable[] | null = null;
    let sinceBest = 0;
    let stoppedEarly = false;
    for (let e = 0; e < options.epochs; e++) {
      const stats = await this.engine.trainEpoch(this.epoch, options.adversarial);
      const event: EpochEvent = {
        ...stats,
        epoch: this.epoch,
        phase,
        parameterNorm: this.parameterNorm(),
      };
      this.epoch++;
      if (!Number.isFinite(stats.loss))
        throw new Error(
          `training diverged at epoch ${event.epoch}: loss ${stats.loss} (lower the learning rate)`,
        );
      epochs.push(event);
      await this.callbacks.onEpochEnd?.(event);
      const last = e === options.epochs - 1;
      if (validate && ((e + 1) % this.config.validation.every === 0 || last)) {
        const result = await this.evaluate();
        const value = result.metrics[this.config.validation.metric] ?? Number.NaN;
        const improved = value > bestValue;
        if (improved) {
          bestValue = value;
          bestEpoch = event.epoch;
          sinceBest = 0;
          if (restoreBest) bestTables = this.model.tables.map(cloneTable);
          if (options.checkpoint)
            await this.save(options.checkpoint, { bestEpoch: event.epoch, bestValue: value });
        } else sinceBest++;
        const v: ValidationEvent = {
          epoch: event.epoch,
          phase,
          metrics: result.metrics,
          value,
          improved,
          seconds: result.seconds,
        };
        validations.push(v);
        await this.callbacks.onValidation?.(v, result);
        if (sinceBest >= this.config.validation.patience) {
          stoppedEarly = true;
          break;
        }
      }
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
    };
  }

  /** Full-ranking evaluation on the validation split (or test, as configured). */
  evaluate(): Promise<EvaluationResult> {
    const v = this.config.validation;
    const cutoffs = [...new Set([...v.cutoffs, Number(v.metric.split('@')[1])])].sort(
      (a, b) => a - b,
    );
    const metrics = [...new Set<MetricName>([this.metricName, 'hr', 'ndcg', 'recall'])];
    return evaluateFullRanking(
      this.model as Parameters<typeof evaluateFullRanking>[0],
      this.dataset,
      {
        split: v.split,
        cutoffs,
        metrics,
        threads: v.threads,
      },
    );
  }

  /** Writes a checkpoint (model, optimiser state, config, epoch), atomically. */
  async save(file: string, extra: JsonObject = {}): Promise<void> {
    await writeCheckpoint(file, this.model, optimizerTables(this.optimizerStates), {
      trainConfig: this.config as unknown as JsonObject,
      epoch: this.epoch,
      step: this.step,
      dataset: this.dataset.name,
      ...extra,
    });
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
