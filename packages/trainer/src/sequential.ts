import { availableParallelism } from 'node:os';
import { ConfigError, DataError, Random, SequenceBatchSampler, deriveSeed } from '@advrec/data';
import type { ConfigIssue, SequenceBatch, SequenceSplit } from '@advrec/data';
import { fgm, getAdversary, perturbSteps } from '@advrec/adversary';
import type { Adversary } from '@advrec/adversary';
import { SEQUENCE_ITEM_TABLE, cloneTable, tfjsPassGradients } from '@advrec/models';
import type {
  ParameterTable,
  PerturbableSurface,
  SequenceGradientKernel,
  SequencePassGradients,
  SequentialModel,
  Tfjs,
} from '@advrec/models';
import { createGemm } from '@advrec/onnx';
import { WasmAdamArrays } from './adam-kernel.js';
import { DEFAULT_DENSE_ADAM, adamRate, adamStep } from './optimizer.js';
import type { DenseAdamConfig } from './optimizer.js';
import type { EngineInfo } from './engine.js';
import { passOf, scatterRows, tableOf } from './sequence-pass.js';
import type { BatchGradients } from './sequence-pass.js';
import { itemSurfaceOf, sparseRowsOf, writeRows } from './sequential-attack.js';
import { evaluateSequential, hitRateAndNdcg } from './sequential-evaluation.js';
import type { SequenceEvaluationSet } from './sequential-evaluation.js';

/**
 * Training a sequential model (SASRec, GRU4Rec, ...) on next-item prediction, as in the
 * SASRec paper: at every position of a user's training sequence the hidden state scores the
 * next item against one sampled negative with the binary cross-entropy
 * `-log sigma(h_t . e_{next}) - log(1 - sigma(h_t . e_{neg}))`, averaged over the batch's
 * positions, with Adam. ATSRec adds the same loss at item embeddings perturbed by FGM:
 * `L + adversarialWeight * L(E + Delta)`, `Delta_i = epsilon * g_i / ||g_i||` per item row,
 * `g` the gradient of the clean loss (APR's construction, applied to the item-embedding layer),
 * through the adversary package like APR's (any registered adversary on the surface).
 */

/** Adam's settings (SASRec: lr 0.001, beta2 0.98); the optimiser module's dense Adam. */
export type SequenceAdamConfig = DenseAdamConfig;

/** ATSRec: adversarial perturbations of the item embeddings during training. */
export interface SequenceAdversarialConfig {
  /** Norm bound of each item row's perturbation. */
  readonly epsilon: number;
  /** Weight lambda of the adversarial loss. */
  readonly adversarialWeight: number;
  /**
   * The adversary on the `itemEmbeddings` surface: a registered name (`fgm`, the default and
   * ATSRec's; `fgsm`, `random`, a plugin's) or an {@link Adversary}. It gets the batch's
   * clean item-row gradients, as APR's adversaries do.
   */
  readonly adversary?: string | Adversary;
}

/** Options of {@link trainSequentialModel}. */
export interface SequenceTrainConfig {
  readonly epochs: number;
  /** Sequences per batch (SASRec: 128). */
  readonly batchSize?: number;
  readonly seed?: number;
  readonly adam?: Partial<SequenceAdamConfig>;
  /** L2 on the item rows a batch touches (SASRec's `l2_emb`, default 0). */
  readonly itemL2?: number;
  /** ATSRec when given; plain training otherwise. */
  readonly adversarial?: SequenceAdversarialConfig;
  /** See `SequenceBatchSamplerOptions.bucketByLength` (default true). */
  readonly bucketByLength?: boolean;
  /**
   * How a batch's loss weighs its positions. `batch`: the mean over the batch's own positions
   * (the SASRec code's loss, whose random batches all hold about as many positions); with
   * batches grouped by length, a batch of short sequences then weighs each of its positions
   * many times more than a batch of long ones. `epoch` (default): the sum over the batch's
   * positions divided by the epoch's mean positions per batch, so that every position weighs
   * the same whichever batch it falls in, as in the paper's random batches.
   */
  readonly positionWeighting?: 'batch' | 'epoch';
  /** Validate every this many epochs (default 0: never). */
  readonly validateEvery?: number;
  /** Stop after this many validations without improvement (default: never). */
  readonly patience?: number;
  /** Validation candidates (target first), from {@link sequenceCandidates}. */
  readonly validation?: SequenceEvaluationSet;
  /**
   * What runs each pass's forward and backward: `auto` (default: the model's own
   * hand-written kernel, `createGradientKernel`, when it has one and onnxruntime is
   * installed for its dense products; tfjs autodiff of the model's encoder otherwise),
   * `model-kernel` (the model's kernel, even on plain-JS products) or `tfjs`. The result's
   * `engine` says which ran and why the others did not.
   */
  readonly engine?: SequenceEngineName;
  /** Threads a model kernel may use (default: every core). Results do not depend on it. */
  readonly threads?: number;
  /** Called after every epoch. */
  onEpoch?(event: SequenceEpochEvent): void;
  /** Adam state to continue from (a previous result's `optimizer`). */
  readonly optimizer?: SequenceOptimizerState;
  /** First epoch's number (for seeds and events; default 0). */
  readonly startEpoch?: number;
  /**
   * Stops after the current batch when aborted: the tables and Adam's state go back to the
   * end of the last complete epoch, and the result says `interrupted` (its `state` continues
   * the run exactly). Training yields to the event loop after every batch, so a signal
   * handler runs while it trains.
   */
  readonly signal?: AbortSignal;
  /**
   * A previous call's {@link SequenceTrainResult.state} (from an interrupted or
   * checkpointed run with the same config): the run continues after its last epoch and ends
   * as the uninterrupted run would have. `optimizer` and `startEpoch` are taken from it.
   */
  readonly resume?: SequenceTrainState;
  /**
   * Called after every epoch with the state that would continue the run from there (for a
   * `last.ckpt`); awaited before the next epoch starts.
   */
  onEpochState?(state: SequenceTrainState): void | Promise<void>;
}

/**
 * Where a sequential training run stands after a complete epoch: what continues it exactly
 * ({@link SequenceTrainConfig.resume}). The model's tables hold that epoch's parameters.
 */
export interface SequenceTrainState {
  /** The first epoch's number of the run ({@link SequenceTrainConfig.startEpoch}). */
  readonly startEpoch: number;
  /** Every epoch run so far. */
  readonly epochs: readonly SequenceEpochEvent[];
  /** Adam's state after the last epoch. */
  readonly optimizer: SequenceOptimizerState;
  /** The best validation so far, its tables and Adam's state then; null before the first validation. */
  readonly best: {
    readonly epoch: number;
    readonly hitRate: number;
    readonly ndcg: number;
    readonly tables: readonly ParameterTable[];
    readonly optimizer: SequenceOptimizerState;
  } | null;
  /** Validations since the best one. */
  readonly sinceBest: number;
}

/** What {@link trainSequentialModel} reports after each epoch. */
export interface SequenceEpochEvent {
  readonly epoch: number;
  readonly loss: number;
  readonly adversarialLoss?: number;
  readonly seconds: number;
  readonly sequencesPerSecond: number;
  readonly positionsPerSecond: number;
  readonly validation?: { readonly hitRate: number; readonly ndcg: number };
}

/** Adam's moments of every trainable table, and its step count. */
export interface SequenceOptimizerState {
  readonly step: number;
  readonly moments: ReadonlyMap<string, { readonly m: Float32Array; readonly v: Float32Array }>;
}

/** What {@link trainSequentialModel} returns. */
export interface SequenceTrainResult {
  readonly epochs: readonly SequenceEpochEvent[];
  /** Best validation epoch (its tables are in the model) or the last epoch without validation. */
  readonly bestEpoch: number;
  readonly bestValidation?: { readonly hitRate: number; readonly ndcg: number };
  readonly stoppedEarly: boolean;
  readonly seconds: number;
  /** Adam's state at the kept epoch (the best validation epoch when validating, else the last). */
  readonly optimizer: SequenceOptimizerState;
  /** True when the signal stopped the run: the model holds the last complete epoch's tables. */
  readonly interrupted: boolean;
  /** The state after the last complete epoch (continues the run exactly when interrupted). */
  readonly state: SequenceTrainState;
  /** What ran the passes (see {@link SequenceTrainConfig.engine}). */
  readonly engine: EngineInfo;
}

/** See {@link SequenceTrainConfig.engine}. */
export type SequenceEngineName = 'auto' | 'model-kernel' | 'tfjs';

/** The engine names {@link SequenceTrainConfig.engine} takes. */
export const SEQUENCE_ENGINES: readonly SequenceEngineName[] = ['auto', 'model-kernel', 'tfjs'];

/** The tfjs-autodiff {@link SequenceGradientKernel} of any sequential model. */
export function tfjsSequenceKernel(tf: Tfjs, model: SequentialModel): SequenceGradientKernel {
  return {
    name: `tfjs autodiff (${tf.getBackend()} backend)`,
    lossAndGradients: (pass) => Promise.resolve(tfjsPassGradients(tf, model, pass)),
    release: () => Promise.resolve(),
  };
}

/** The kernel a run uses and the record of the choice. */
export interface SequenceKernelChoice {
  readonly kernel: SequenceGradientKernel;
  readonly info: EngineInfo;
  /** Releases the kernel and the dense products it owns. */
  release(): Promise<void>;
}

/**
 * Picks what runs a sequential model's passes (see {@link SequenceTrainConfig.engine}):
 * the model's hand-written kernel or tfjs autodiff, with every refusal recorded in
 * `info.details.declined`. `model-kernel` on a model without one is a `ConfigError` at `engine`.
 */
export async function chooseSequenceKernel(
  tf: Tfjs,
  model: SequentialModel,
  options: { readonly engine?: SequenceEngineName; readonly threads?: number } = {},
): Promise<SequenceKernelChoice> {
  const engine = options.engine ?? 'auto';
  const declined: string[] = [];
  if (engine !== 'tfjs') {
    if (!model.createGradientKernel) {
      const reason = `${model.modelName} brings no hand-written gradient kernel`;
      if (engine === 'model-kernel')
        throw new ConfigError([{ path: 'engine', message: `model-kernel: ${reason}` }]);
      declined.push(`model-kernel: ${reason}`);
    } else {
      const gemm = await createGemm({ threads: 1 });
      const threads = options.threads ?? availableParallelism();
      const made =
        gemm.backend === 'onnxruntime' || engine === 'model-kernel'
          ? model.createGradientKernel({ gemm, threads })
          : {
              declined:
                'onnxruntime-node is not installed, and its products on plain JS would be slower than tfjs',
            };
      if ('declined' in made) {
        await gemm.release();
        if (engine === 'model-kernel')
          throw new ConfigError([{ path: 'engine', message: `model-kernel: ${made.declined}` }]);
        declined.push(`model-kernel: ${made.declined}`);
      } else {
        return {
          kernel: made,
          info: {
            name: 'model-kernel',
            description: made.name,
            threads,
            details: { kernel: made.name, denseProducts: gemm.backend, declined },
          },
          release: async () => {
            await made.release();
            await gemm.release();
          },
        };
      }
    }
  }
  const kernel = tfjsSequenceKernel(tf, model);
  return {
    kernel,
    info: {
      name: 'tfjs',
      description: kernel.name,
      threads: 1,
      details: { kernel: kernel.name, declined },
    },
    release: () => kernel.release(),
  };
}

/** A batch's loss and gradients, the item-row gradients added into `itemGradient`. */
async function batchLossAndGradients(
  kernel: SequenceGradientKernel,
  model: SequentialModel,
  batch: SequenceBatch,
  training: boolean,
  seed: number,
  itemGradient: Float32Array,
  perturbation?: Float32Array,
  items?: Float32Array,
  weight = 1,
): Promise<BatchGradients> {
  const gradients = weighted(
    await kernel.lossAndGradients(passOf(model, batch, training, seed, perturbation, items)),
    weight,
  );
  const touched = scatterRows(model.dimension, batch, gradients, itemGradient, weight);
  return { loss: gradients.loss, items: itemGradient, touched, dense: gradients.dense };
}

/**
 * A pass's loss and dense gradients times `weight` (in place; the pass itself when 1). Its
 * item-row gradients are weighted as {@link scatterRows} adds them up.
 */
function weighted(pass: SequencePassGradients, weight: number): SequencePassGradients {
  if (weight === 1) return pass;
  for (const values of pass.dense.values())
    for (let k = 0; k < values.length; k++) values[k] = values[k]! * weight;
  return { ...pass, loss: pass.loss * weight };
}

/** The adversary a config names (FGM, ATSRec's, by default). */
function adversaryOf(config: SequenceAdversarialConfig): Adversary {
  const named = config.adversary ?? fgm;
  return typeof named === 'string' ? getAdversary(named) : named;
}

function checkTrainConfig(config: SequenceTrainConfig): void {
  const issues: ConfigIssue[] = [];
  const positiveInteger = (path: string, v: unknown, min = 1) => {
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= min))
      issues.push({ path, message: `must be an integer >= ${min}, got ${JSON.stringify(v)}` });
  };
  positiveInteger('epochs', config.epochs, 0);
  if (config.batchSize !== undefined) positiveInteger('batchSize', config.batchSize);
  if (config.threads !== undefined) positiveInteger('threads', config.threads);
  if (config.engine !== undefined && !SEQUENCE_ENGINES.includes(config.engine))
    issues.push({
      path: 'engine',
      message: `must be one of ${SEQUENCE_ENGINES.join(', ')}, got ${JSON.stringify(config.engine)}`,
    });
  if (config.validateEvery !== undefined) positiveInteger('validateEvery', config.validateEvery, 0);
  if (config.patience !== undefined) positiveInteger('patience', config.patience);
  if (
    config.resume &&
    config.startEpoch !== undefined &&
    config.startEpoch !== config.resume.startEpoch
  )
    issues.push({
      path: 'startEpoch',
      message: `the resumed state started at epoch ${config.resume.startEpoch}, not ${config.startEpoch}`,
    });
  const nonNegative = (path: string, v: unknown) => {
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0))
      issues.push({ path, message: `must be a finite number >= 0, got ${JSON.stringify(v)}` });
  };
  if (config.itemL2 !== undefined) nonNegative('itemL2', config.itemL2);
  if (config.adversarial) {
    nonNegative('adversarial.epsilon', config.adversarial.epsilon);
    nonNegative('adversarial.adversarialWeight', config.adversarial.adversarialWeight);
    try {
      adversaryOf(config.adversarial);
    } catch (error) {
      if (!ConfigError.isInstance(error)) throw error;
      for (const issue of error.issues)
        issues.push({ ...issue, path: issue.path.replace(/^adversary/, 'adversarial.adversary') });
    }
  }
  const adam = config.adam ?? {};
  if (adam.learningRate !== undefined && !(adam.learningRate > 0))
    issues.push({ path: 'adam.learningRate', message: `must be > 0, got ${adam.learningRate}` });
  for (const key of ['beta1', 'beta2'] as const)
    if (adam[key] !== undefined && !(adam[key] >= 0 && adam[key] < 1))
      issues.push({ path: `adam.${key}`, message: `must be in [0, 1), got ${adam[key]}` });
  if ((config.validateEvery ?? 0) > 0 && !config.validation)
    issues.push({ path: 'validation', message: 'validateEvery needs a validation set' });
  if (
    config.positionWeighting !== undefined &&
    config.positionWeighting !== 'batch' &&
    config.positionWeighting !== 'epoch'
  )
    issues.push({
      path: 'positionWeighting',
      message: `must be "batch" or "epoch", got ${JSON.stringify(config.positionWeighting)}`,
    });
  if (issues.length > 0) throw new ConfigError(issues);
}

/** A copy of Adam's state. */
function copyOptimizer(state: SequenceOptimizerState): SequenceOptimizerState {
  return {
    step: state.step,
    moments: new Map(
      [...state.moments].map(([name, { m, v }]) => [
        name,
        { m: Float32Array.from(m), v: Float32Array.from(v) },
      ]),
    ),
  };
}

/**
 * The item table's Adam step not yet applied to every row: rows are brought up to date when a
 * batch reads them, the rest while the kernel computes the next pass (on its worker threads).
 * Each row goes through the same updates in the same order, so the tables are the same as
 * with the step applied at once.
 */
interface PendingItemStep {
  readonly gradient: Float32Array;
  readonly touched: Int32Array;
  readonly rate: number;
  /** 1 for rows already updated. */
  readonly done: Uint8Array;
}

/** What one batch step needs: the model, its tables, the scratch gradients and Adam. */
interface SequenceStep {
  readonly kernel: SequenceGradientKernel;
  readonly model: SequentialModel;
  readonly config: SequenceTrainConfig;
  readonly adam: SequenceAdamConfig;
  readonly itemTable: ParameterTable;
  /**
   * The item table's values while training: in {@link arena} when there is one (copied back
   * to the model's table at the end of every epoch), else the table's own values.
   */
  readonly itemValues: Float32Array;
  /** The item table, its moments and gradients in WebAssembly memory for the SIMD Adam kernel. */
  readonly arena: WasmAdamArrays | null;
  readonly trainable: readonly ParameterTable[];
  readonly moments: Map<string, { m: Float32Array; v: Float32Array }>;
  /** The item gradient being accumulated; swapped with `spareGradient` at each step. */
  itemGradient: Float32Array;
  spareGradient: Float32Array;
  readonly adversarialGradient: Float32Array | null;
  readonly perturbation: Float32Array | null;
  /** ATSRec's adversary (null without `adversarial`) and the surface it perturbs. */
  readonly adversary: Adversary | null;
  readonly itemSurface: PerturbableSurface | null;
  pending: PendingItemStep | null;
  step: number;
  /** The epoch's mean positions per batch (see `positionWeighting`). */
  readonly meanTargets: number;
}

/** Adam on rows `[from, to)` of the item table for a pending step. */
function pendingRows(run: SequenceStep, pending: PendingItemStep, from: number, to: number): void {
  const d = run.model.dimension;
  const { m, v } = run.moments.get(SEQUENCE_ITEM_TABLE)!;
  const { beta1, beta2, epsilon } = run.adam;
  if (run.arena) {
    const { itemValues, arena } = run;
    arena.step(
      itemValues,
      pending.gradient,
      m,
      v,
      from * d,
      to * d,
      beta1,
      beta2,
      pending.rate,
      epsilon,
    );
    return;
  }
  adamStep(
    run.itemValues.subarray(from * d, to * d),
    pending.gradient.subarray(from * d, to * d),
    m.subarray(from * d, to * d),
    v.subarray(from * d, to * d),
    beta1,
    beta2,
    pending.rate,
    epsilon,
  );
}

/** Applies the pending step to the rows `batch` reads (it needs them current). */
function updateRowsOf(run: SequenceStep, batch: SequenceBatch): void {
  const pending = run.pending;
  if (!pending) return;
  for (const ids of [batch.inputs, batch.positives, batch.negatives])
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      if (id < 0 || pending.done[id] === 1) continue;
      pending.done[id] = 1;
      pendingRows(run, pending, id, id + 1);
    }
}

/** Applies the pending step to every row not yet updated, and clears its gradient. */
function finishPendingStep(run: SequenceStep): void {
  const pending = run.pending;
  if (!pending) return;
  const rows = run.itemTable.rows;
  for (let from = 0; from < rows;) {
    while (from < rows && pending.done[from] === 1) from++;
    let to = from;
    while (to < rows && pending.done[to] === 0) to++;
    if (to > from) pendingRows(run, pending, from, to);
    from = to;
  }
  const d = run.model.dimension;
  for (const id of pending.touched) pending.gradient.fill(0, id * d, (id + 1) * d);
  run.pending = null;
}

/**
 * ATSRec's perturbation of the batch's item rows, written into `run.perturbation`: the
 * run's adversary given the clean item-row gradients of the touched rows (a multi-step
 * adversary gets the gradient at its previous step, from another pass of the same batch).
 */
async function perturbItemRows(
  run: SequenceStep,
  batch: SequenceBatch,
  passSeed: number,
  touched: Int32Array,
): Promise<void> {
  const { model, adversary, perturbation } = run;
  const surface = run.itemSurface!;
  const d = model.dimension;
  const perturbations = await perturbSteps(
    adversary!,
    run.config.adversarial!.epsilon,
    [surface],
    Random.stream(passSeed, 0xa75),
    new Map([[surface.name, sparseRowsOf(run.itemGradient, touched, d)]]),
    async (previous) => {
      const at = new Float32Array(model.numItems * d);
      writeRows(previous.get(surface.name)!, at);
      const g = await batchLossAndGradients(
        run.kernel,
        model,
        batch,
        true,
        passSeed,
        new Float32Array(model.numItems * d),
        at,
        run.itemValues,
      );
      return new Map([[surface.name, sparseRowsOf(g.items, touched, d)]]);
    },
  );
  writeRows(perturbations.get(surface.name)!, perturbation!);
}

/**
 * One batch: the clean loss and gradients, with ATSRec the loss at FGM-perturbed item rows
 * added with weight lambda, L2 on the touched item rows, then Adam on every trainable table
 * (the item table's rows finished during the next batch's pass, see {@link PendingItemStep}).
 * Returns the clean and adversarial losses.
 */
async function trainBatch(
  run: SequenceStep,
  batch: SequenceBatch,
  passSeed: number,
): Promise<{ loss: number; adversarialLoss: number }> {
  const { kernel, model, config, adam, itemTable } = run;
  const d = model.dimension;
  updateRowsOf(run, batch);
  // The kernel starts the pass (on its threads) before the rest of the previous step runs here.
  const started = kernel.lossAndGradients(
    passOf(model, batch, true, passSeed, undefined, run.itemValues),
  );
  finishPendingStep(run);
  const itemGradient = run.itemGradient;
  const weight =
    (config.positionWeighting ?? 'epoch') === 'epoch' ? batch.targets / run.meanTargets : 1;
  const cleanPass = weighted(await started, weight);
  const clean = {
    loss: cleanPass.loss,
    touched: scatterRows(d, batch, cleanPass, itemGradient, weight),
  };
  const denseTotal = new Map(cleanPass.dense);
  // The adversarial pass touches the same rows (same batch).
  const touched = clean.touched;
  let adversarialLoss = 0;
  const { adversarialGradient, perturbation } = run;
  if (config.adversarial && adversarialGradient && perturbation) {
    await perturbItemRows(run, batch, passSeed, clean.touched);
    const adversarial = await batchLossAndGradients(
      kernel,
      model,
      batch,
      true,
      passSeed,
      adversarialGradient,
      perturbation,
      run.itemValues,
      weight,
    );
    adversarialLoss = adversarial.loss;
    const lambda = config.adversarial.adversarialWeight;
    for (const id of adversarial.touched) {
      const at = id * d;
      for (let c = 0; c < d; c++) {
        itemGradient[at + c] = itemGradient[at + c]! + lambda * adversarialGradient[at + c]!;
        adversarialGradient[at + c] = 0;
        perturbation[at + c] = 0;
      }
    }
    for (const [name, g] of adversarial.dense) {
      const total = denseTotal.get(name)!;
      for (let k = 0; k < g.length; k++) total[k] = total[k]! + lambda * g[k]!;
    }
  }
  const itemL2 = config.itemL2 ?? 0;
  if (itemL2 > 0)
    for (const id of touched) {
      const at = id * d;
      for (let c = 0; c < d; c++)
        itemGradient[at + c] = itemGradient[at + c]! + 2 * itemL2 * run.itemValues[at + c]!;
    }
  // Adam on every trainable table (dense: untouched item rows keep decaying moments, as
  // TF1's Adam does with sparse gradients in the SASRec code).
  const step = ++run.step;
  const rate = adamRate(adam.learningRate, adam.beta1, adam.beta2, step);
  for (const table of run.trainable) {
    if (table.name === SEQUENCE_ITEM_TABLE) continue;
    const gradient = denseTotal.get(table.name);
    if (!gradient) continue;
    const { m, v } = run.moments.get(table.name)!;
    adamStep(table.values, gradient, m, v, adam.beta1, adam.beta2, rate, adam.epsilon);
  }
  if (run.trainable.includes(itemTable)) {
    run.pending = {
      gradient: itemGradient,
      touched,
      rate,
      done: new Uint8Array(itemTable.rows),
    };
    run.itemGradient = run.spareGradient;
    run.spareGradient = itemGradient;
  } else for (const id of touched) itemGradient.fill(0, id * d, (id + 1) * d);
  return { loss: clean.loss, adversarialLoss };
}

/** Refuses tables that stopped being finite (a learning rate too high). */
function checkFinite(trainable: readonly ParameterTable[], epoch: number): void {
  for (const table of trainable) {
    const bad = table.values.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0)
      throw new DataError(
        `training diverged at epoch ${epoch + 1}: ${table.name}[${Math.floor(bad / table.dimension)}] is not finite; lower adam.learningRate`,
      );
  }
}

/** Lets timers and signal handlers run between batches. */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Trains a sequential model in place (SASRec's recipe; ATSRec with `adversarial`), keeping
 * the best validation epoch's tables when validating. Deterministic for a seed on one
 * backend; an interrupted run continued from its {@link SequenceTrainResult.state} ends
 * exactly as an uninterrupted one.
 */
export async function trainSequentialModel(
  tf: Tfjs,
  model: SequentialModel,
  split: SequenceSplit,
  config: SequenceTrainConfig,
): Promise<SequenceTrainResult> {
  checkTrainConfig(config);
  if (split.numItems !== model.numItems)
    throw new DataError(
      `${split.source}: the data has ${split.numItems} items, the model ${model.numItems}`,
    );
  const started = performance.now();
  const sampler = new SequenceBatchSampler(split, {
    batchSize: config.batchSize ?? 128,
    maxLength: model.maxLength,
    seed: config.seed ?? 0,
    bucketByLength: config.bucketByLength ?? true,
  });
  const choice = await chooseSequenceKernel(tf, model, {
    ...(config.engine ? { engine: config.engine } : {}),
    ...(config.threads !== undefined ? { threads: config.threads } : {}),
  });
  try {
    return await trainWith(tf, choice, model, config, sampler, started);
  } finally {
    await choice.release();
  }
}

/**
 * A run's step state: Adam's moments (from the resumed or given optimiser state, else zero)
 * and, when they fit and the item table is trained, the item table, its moments and two
 * gradients in WebAssembly memory: Adam's dense step over every item row is the bulk of a
 * step's plain-JS work, and the SIMD kernel does it with the same arithmetic.
 */
function createStep(
  choice: SequenceKernelChoice,
  model: SequentialModel,
  config: SequenceTrainConfig,
  meanTargets: number,
): SequenceStep {
  const itemTable = tableOf(model, SEQUENCE_ITEM_TABLE);
  const trainable = model.trainableTables.map((name) => tableOf(model, name));
  const previous = config.resume?.optimizer ?? config.optimizer;
  const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
  for (const t of trainable) {
    const saved = previous?.moments.get(t.name);
    moments.set(t.name, {
      m: saved ? Float32Array.from(saved.m) : new Float32Array(t.values.length),
      v: saved ? Float32Array.from(saved.v) : new Float32Array(t.values.length),
    });
  }
  const size = itemTable.values.length;
  const itemMoments = moments.get(SEQUENCE_ITEM_TABLE);
  const arena = itemMoments ? WasmAdamArrays.create([size, size, size, size, size]) : null;
  let gradients: [Float32Array, Float32Array] = [new Float32Array(0), new Float32Array(0)];
  if (arena && itemMoments) {
    const [values, m, v, g0, g1] = arena.arrays as [
      Float32Array,
      Float32Array,
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    values.set(itemTable.values);
    m.set(itemMoments.m);
    v.set(itemMoments.v);
    moments.set(SEQUENCE_ITEM_TABLE, { m, v });
    gradients = [g0, g1];
  } else gradients = [new Float32Array(size), new Float32Array(size)];
  return {
    kernel: choice.kernel,
    model,
    config,
    adam: { ...DEFAULT_DENSE_ADAM, ...config.adam },
    itemTable,
    itemValues: arena ? arena.arrays[0]! : itemTable.values,
    arena,
    trainable,
    moments,
    itemGradient: gradients[0],
    spareGradient: gradients[1],
    pending: null,
    adversarialGradient: config.adversarial ? new Float32Array(itemTable.values.length) : null,
    perturbation: config.adversarial ? new Float32Array(itemTable.values.length) : null,
    adversary: config.adversarial ? adversaryOf(config.adversarial) : null,
    itemSurface: config.adversarial ? itemSurfaceOf(model) : null,
    step: previous?.step ?? 0,
    meanTargets,
  };
}

async function trainWith(
  tf: Tfjs,
  choice: SequenceKernelChoice,
  model: SequentialModel,
  config: SequenceTrainConfig,
  sampler: SequenceBatchSampler,
  started: number,
): Promise<SequenceTrainResult> {
  const seed = config.seed ?? 0;
  const resume = config.resume;
  const run = createStep(choice, model, config, sampler.meanTargetsPerBatch);
  const { itemTable, trainable, moments } = run;
  const startEpoch = resume?.startEpoch ?? config.startEpoch ?? 0;
  const epochs: SequenceEpochEvent[] = [...(resume?.epochs ?? [])];
  let best = resume?.best ?? null;
  let sinceBest = resume?.sinceBest ?? 0;
  const state = (): SequenceTrainState => ({
    startEpoch,
    epochs: [...epochs],
    optimizer: copyOptimizer({ step: run.step, moments }),
    best,
    sinceBest,
  });
  let stoppedEarly =
    resume !== undefined && config.patience !== undefined && sinceBest >= config.patience;
  let interrupted = false;
  // The state at the last complete epoch is copied as it goes only when something can ask
  // for it mid-run (a signal, a checkpoint per epoch); otherwise it is read at the end.
  const keepState = config.signal !== undefined || config.onEpochState !== undefined;
  let last = keepState ? state() : null;
  for (
    let e = startEpoch + epochs.length;
    e < startEpoch + config.epochs && !stoppedEarly && !interrupted;
    e++
  ) {
    const epochStart = performance.now();
    const before = config.signal ? model.tables.map(cloneTable) : null;
    let lossSum = 0;
    let adversarialSum = 0;
    let sequences = 0;
    let positions = 0;
    const batches = sampler.epoch(e);
    for (let b = 0; b < batches.length && !interrupted; b++) {
      const batch = batches[b]!;
      const losses = await trainBatch(run, batch, deriveSeed(seed, e, b));
      lossSum += losses.loss;
      adversarialSum += losses.adversarialLoss;
      sequences += batch.size;
      positions += batch.targets;
      await yieldToEventLoop();
      interrupted = config.signal?.aborted === true;
    }
    if (interrupted) {
      // Back to the end of the last complete epoch: what `state` continues from.
      run.pending = null;
      for (const t of before!) tableOf(model, t.name).values.set(t.values);
      break;
    }
    finishPendingStep(run);
    if (run.arena) itemTable.values.set(run.itemValues);
    checkFinite(trainable, e);
    const seconds = (performance.now() - epochStart) / 1000;
    let validation: { hitRate: number; ndcg: number } | undefined;
    const every = config.validateEvery ?? 0;
    if (every > 0 && config.validation && (e - startEpoch + 1) % every === 0) {
      const result = await evaluateSequential(tf, model, config.validation, {
        split: 'validation',
        metrics: ['hr', 'ndcg'],
      });
      const { hitRate, ndcg } = hitRateAndNdcg(result);
      validation = { hitRate, ndcg };
      if (!best || validation.ndcg > best.ndcg) {
        best = {
          epoch: e,
          ...validation,
          tables: model.tables.map(cloneTable),
          optimizer: copyOptimizer({ step: run.step, moments }),
        };
        sinceBest = 0;
      } else sinceBest++;
    }
    const event: SequenceEpochEvent = {
      epoch: e,
      loss: lossSum / batches.length,
      ...(config.adversarial ? { adversarialLoss: adversarialSum / batches.length } : {}),
      seconds,
      sequencesPerSecond: sequences / seconds,
      positionsPerSecond: positions / seconds,
      ...(validation ? { validation } : {}),
    };
    epochs.push(event);
    if (keepState) last = state();
    config.onEpoch?.(event);
    if (last) await config.onEpochState?.(last);
    if (config.patience !== undefined && sinceBest >= config.patience) stoppedEarly = true;
    interrupted = config.signal?.aborted === true && e + 1 < startEpoch + config.epochs;
  }
  if (!interrupted && best)
    for (const t of best.tables) tableOf(model, t.name).values.set(t.values);
  return {
    epochs,
    bestEpoch: best ? best.epoch : startEpoch + epochs.length - 1,
    ...(best ? { bestValidation: { hitRate: best.hitRate, ndcg: best.ndcg } } : {}),
    stoppedEarly,
    seconds: (performance.now() - started) / 1000,
    optimizer: best ? copyOptimizer(best.optimizer) : copyOptimizer({ step: run.step, moments }),
    interrupted,
    state: last ?? state(),
    engine: choice.info,
  };
}
