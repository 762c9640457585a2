import type * as tfc from '@tensorflow/tfjs-core';
import { ConfigError, deriveSeed, globalRegistry } from '@advrec/data';
import type { Gemm } from '@advrec/onnx';
import type { JsonObject, ModelSpecificationVersion, PerturbableSurface, Tfjs } from './model.js';
import { MODEL_SPECIFICATION_VERSION } from './model.js';
import { addToRegistry } from './registry.js';
import type { ParameterTable } from './tables.js';

/** The item table every sequential model shares between its inputs and its outputs. */
export const SEQUENCE_ITEM_TABLE = 'itemEmbeddings';

/**
 * What a sequential model's encoder receives for one batch of left-padded sequences (see
 * `SequenceBatch` in `@advrec/data`).
 */
export interface SequenceEncoderInputs {
  /** Rows (sequences) in the batch. */
  readonly size: number;
  /** Padded length of the batch (at most the model's `maxLength`). */
  readonly length: number;
  /**
   * Position of the batch's first column among the model's `maxLength` positions: columns
   * are right-aligned, so the last column is always position `maxLength - 1`.
   */
  readonly positionOffset: number;
  /**
   * `size x length x dimension`: the input items' rows of {@link SEQUENCE_ITEM_TABLE}
   * (perturbed when an adversary perturbs the item embeddings), zero rows at padding.
   */
  readonly itemRows: tfc.Tensor3D;
  /** `size x length x 1`: 1 at real positions, 0 at padding. */
  readonly mask: tfc.Tensor3D;
  /** The model's dense tables (everything but the item table) as `rows x dimension` tensors. */
  readonly dense: Readonly<Record<string, tfc.Tensor2D>>;
  /** True for a training step: dropout is then active. */
  readonly training: boolean;
  /** Dropout with a seeded mask when training, the identity otherwise. */
  dropout<T extends tfc.Tensor>(x: T, rate: number): T;
}

/**
 * A sequential model's definition in tfjs-core ops: the hidden state at every position
 * (`size x length x dimension`), from which the next item's score is the inner product with
 * that item's row of {@link SEQUENCE_ITEM_TABLE}. Hidden states at padding are ignored. It
 * must be causal (position t sees positions <= t only) and must not let padding change the
 * real positions' outputs: the contract suite checks that a short batch equals the same
 * sequences padded to `maxLength`.
 */
export type SequenceEncoder = (tf: Tfjs, inputs: SequenceEncoderInputs) => tfc.Tensor3D;

/**
 * One training pass of a sequential model over a batch of left-padded sequences, with the
 * item rows already gathered (and perturbed, for an adversarial pass) by the trainer.
 * `size x length` positions, row-major (sequence, then position).
 */
export interface SequencePass {
  readonly size: number;
  readonly length: number;
  /** See {@link SequenceEncoderInputs.positionOffset}. */
  readonly positionOffset: number;
  /** `size x length x dimension`: the input items' rows, zero at padding. */
  readonly inputRows: Float32Array;
  /** `size x length x dimension`: each position's next item (the positive), zero where none. */
  readonly positiveRows: Float32Array;
  /** `size x length x dimension`: each position's sampled negative, zero where none. */
  readonly negativeRows: Float32Array;
  /** `size x length`: 1 at real input positions, 0 at padding. */
  readonly inputMask: Float32Array;
  /** `size x length`: 1 where the position has a target, 0 elsewhere. */
  readonly targetMask: Float32Array;
  /** The loss is the sum over targets divided by this (the batch's target count). */
  readonly targets: number;
  /** Dropout is active when true. */
  readonly training: boolean;
  /** Seeds the pass's dropout masks: the same seed gives the same masks. */
  readonly seed: number;
}

/**
 * The loss of a {@link SequencePass} (SASRec's next-item binary cross-entropy,
 * `sum_t w_t (softplus(-h_t . e_pos) + softplus(h_t . e_neg)) / targets`) and its gradients
 * with respect to the gathered rows and to every dense table (by name, whole).
 */
export interface SequencePassGradients {
  readonly loss: number;
  readonly inputRows: Float32Array;
  readonly positiveRows: Float32Array;
  readonly negativeRows: Float32Array;
  readonly dense: ReadonlyMap<string, Float32Array>;
}

/**
 * A sequential model's training math for one pass (forward and backward). The trainer's
 * default runs the model's tfjs {@link SequenceEncoder} through autodiff; a model may bring a
 * hand-written kernel ({@link SequentialModel.createGradientKernel}) that must agree with it
 * (the tfjs definition is the test oracle). It reads the model's dense tables as they are at
 * the call (the trainer updates them in place between passes) and never the item table: the
 * pass brings its rows gathered, and the trainer finishes the item table's previous Adam step
 * while the pass runs.
 */
export interface SequenceGradientKernel {
  /** What runs the math, for reports (e.g. `sasrec-fused (onnxruntime products)`). */
  readonly name: string;
  lossAndGradients(pass: SequencePass): Promise<SequencePassGradients>;
  /** Releases native resources. */
  release(): Promise<void>;
}

/** What {@link SequentialModel.createGradientKernel} gets. */
export interface SequenceKernelContext {
  /** Dense products for this thread (onnxruntime's MLAS when installed, single-threaded). */
  readonly gemm: Gemm;
  /**
   * Threads the kernel may use (worker threads of its own); results must not depend on it.
   */
  readonly threads: number;
}

/**
 * The contract of a sequential recommender (SASRec, GRU4Rec, ...), beside the pairwise
 * {@link Model}: a user is the sequence of their items, and the model scores the next item.
 * Parameters are named tables: {@link SEQUENCE_ITEM_TABLE} (item side, `numItems x
 * dimension`, shared by inputs and outputs) and dense tables (weights, positions). The
 * trainer gathers the batch's item rows itself, differentiates the encoder with respect to
 * those rows and the dense tables, and updates the tables in place; an adversary (ATSRec)
 * perturbs the item rows through the `itemEmbeddings` surface.
 */
export interface SequentialModel {
  readonly kind: 'sequential';
  readonly specificationVersion: ModelSpecificationVersion;
  readonly modelName: string;
  readonly config: JsonObject;
  /** Always 0: a sequential model has no per-user parameters (checkpoints store the field). */
  readonly numUsers: number;
  readonly numItems: number;
  /** Longest history the model reads (the most recent items). */
  readonly maxLength: number;
  /** Width of the item rows and hidden states. */
  readonly dimension: number;
  readonly tables: readonly ParameterTable[];
  readonly trainableTables: readonly string[];
  /** What an adversary may perturb: the item embeddings. */
  readonly surfaces: readonly PerturbableSurface[];
  readonly encode: SequenceEncoder;
  /**
   * Optional: a hand-written training kernel for this model. Returns `{ declined }`, with the
   * reason, when it cannot run this configuration; the trainer then differentiates
   * {@link encode} with tfjs and reports why.
   */
  createGradientKernel?(
    context: SequenceKernelContext,
  ): SequenceGradientKernel | { readonly declined: string };
}

/** True for a {@link SequentialModel} (as opposed to a pairwise `Model`). */
export function isSequentialModel(value: unknown): value is SequentialModel {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { kind?: unknown }).kind === 'sequential'
  );
}

/** What a sequential model factory gets at creation. */
export interface SequentialModelContext {
  readonly numItems: number;
  /** Seed for the initialisation, used when the config has none. */
  readonly seed: number;
}

/** A registered sequential model kind (see {@link registerSequentialModel}). */
export interface SequentialModelFactory {
  readonly kind: 'sequential';
  readonly specificationVersion: ModelSpecificationVersion;
  readonly modelName: string;
  /** One line for `--help` and error messages. */
  readonly description: string;
  create(context: SequentialModelContext, config: JsonObject): SequentialModel;
  restore(state: {
    readonly config: JsonObject;
    readonly numItems: number;
    readonly tables: readonly ParameterTable[];
  }): SequentialModel;
}

const registry = globalRegistry<SequentialModelFactory>('sequential-model');

/** Registers a sequential model kind under its name (a different factory under a taken name throws). */
export function registerSequentialModel(factory: SequentialModelFactory): void {
  addToRegistry(registry, factory, 'a sequential model');
}

/** The sequential factory registered under `name`; the error lists what is registered. */
export function getSequentialModelFactory(name: string): SequentialModelFactory {
  const factory = registry.get(name);
  if (!factory)
    throw new ConfigError([
      {
        path: 'model.name',
        message: `unknown sequential model "${name}" (registered: ${[...registry.keys()].join(', ') || 'none'})`,
      },
    ]);
  return factory;
}

/** Names of the registered sequential models. */
export function sequentialModelNames(): string[] {
  return [...registry.keys()];
}

/** The contract version new sequential models declare. */
export const SEQUENTIAL_MODEL_SPECIFICATION_VERSION: ModelSpecificationVersion =
  MODEL_SPECIFICATION_VERSION;

/**
 * `a x b` (2-D, or 3-D batched) whose gradient uses explicit transposes instead of
 * `matMul`'s `transposeA/B` flags: on tfjs's wasm backend the flagged products fall off the
 * SIMD fast path (about 10x slower, see ENGINE.md), and autodiff's stock matMul gradient
 * emits exactly those. Same values and gradients as `tf.matMul(a, b)`.
 */
export function matMulExplicitGradient<T extends tfc.Tensor2D | tfc.Tensor3D>(
  tf: Tfjs,
  a: T,
  b: T,
): T {
  const transpose = (x: tfc.Tensor): tfc.Tensor =>
    x.rank === 3 ? tf.transpose(x, [0, 2, 1]) : tf.transpose(x);
  const product = tf.customGrad((...args: unknown[]) => {
    const [x, y, save] = args as [tfc.Tensor, tfc.Tensor, (t: tfc.Tensor[]) => void];
    save([x, y]);
    return {
      value: tf.matMul(x as tfc.Tensor2D, y as tfc.Tensor2D) as tfc.Tensor,
      gradFunc: (dy: tfc.Tensor, saved: tfc.Tensor[]) => {
        const [sx, sy] = saved as [tfc.Tensor, tfc.Tensor];
        return [
          tf.matMul(dy as tfc.Tensor2D, transpose(sy) as tfc.Tensor2D),
          tf.matMul(transpose(sx) as tfc.Tensor2D, dy as tfc.Tensor2D),
        ];
      },
    };
  });
  return product(a, b) as T;
}

/** What {@link resolveModelOptions} checks: integers (default, minimum) and rates in [0, 1) (default). */
export interface ModelOptionSpec {
  readonly integers?: Readonly<Record<string, readonly [fallback: number, min: number]>>;
  readonly rates?: Readonly<Record<string, number>>;
}

/**
 * Resolves a model's numeric options (for plugin authors): unknown keys, integers below their
 * minimum and rates outside [0, 1) are all reported at once in one `ConfigError`, each with its
 * field; absent options take their defaults.
 */
export function resolveModelOptions(
  modelName: string,
  options: object,
  spec: ModelOptionSpec,
): Record<string, number> {
  const config = options as Readonly<Record<string, unknown>>;
  const issues: { path: string; message: string }[] = [];
  const known = [...Object.keys(spec.integers ?? {}), ...Object.keys(spec.rates ?? {})];
  for (const key of Object.keys(config))
    if (!known.includes(key))
      issues.push({
        path: key,
        message: `unknown option of ${modelName}; it takes ${known.join(', ')}`,
      });
  const out: Record<string, number> = {};
  for (const [key, [fallback, min]] of Object.entries(spec.integers ?? {})) {
    const value = config[key] ?? fallback;
    if (!(typeof value === 'number' && Number.isInteger(value) && value >= min))
      issues.push({
        path: key,
        message: `must be an integer >= ${min}, got ${JSON.stringify(value)}`,
      });
    out[key] = value as number;
  }
  for (const [key, fallback] of Object.entries(spec.rates ?? {})) {
    const value = config[key] ?? fallback;
    if (!(typeof value === 'number' && value >= 0 && value < 1))
      issues.push({ path: key, message: `must be in [0, 1), got ${JSON.stringify(value)}` });
    out[key] = value as number;
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return out;
}

/**
 * Fills a model's freshly created tables from a checkpoint's (for plugin authors' `restore`):
 * each must be there with the same shape, else a `ConfigError` names the table.
 */
export function restoreTables(
  modelName: string,
  fresh: readonly ParameterTable[],
  given: readonly ParameterTable[],
): void {
  for (const table of fresh) {
    const saved = given.find((t) => t.name === table.name);
    if (!saved || saved.rows !== table.rows || saved.dimension !== table.dimension)
      throw new ConfigError([
        {
          path: `tables.${table.name}`,
          message: saved
            ? `is ${saved.rows} x ${saved.dimension}, ${modelName} with this config needs ${table.rows} x ${table.dimension}`
            : 'missing from the checkpoint',
        },
      ]);
    table.values.set(saved.values);
  }
}

/**
 * Seeded dropout for one tfjs pass (what {@link SequenceEncoderInputs.dropout} is): the same
 * `seed` gives the same masks; the identity when not training.
 */
export function seededDropout(tf: Tfjs, training: boolean, seed: number) {
  let call = 0;
  return <T extends tfc.Tensor>(x: T, rate: number): T => {
    if (!training || rate <= 0) return x;
    return tf.dropout(x, rate, undefined, deriveSeed(seed, call++)) as T;
  };
}

/**
 * A pass's loss and gradients by tfjs autodiff of the model's encoder (every sequential
 * model's definition, and the oracle of hand-written kernels).
 */
export function tfjsPassGradients(
  tf: Tfjs,
  model: SequentialModel,
  pass: SequencePass,
): SequencePassGradients {
  const d = model.dimension;
  const { size, length } = pass;
  const names = model.tables.filter((t) => t.side === 'dense').map((t) => t.name);
  const tableOf = (name: string) => model.tables.find((t) => t.name === name)!;
  let result = { loss: 0, grads: [] as Float32Array[] };
  tf.tidy(() => {
    const xs: tfc.Tensor[] = [
      tf.tensor2d(pass.inputRows, [size * length, d]),
      tf.tensor2d(pass.positiveRows, [size * length, d]),
      tf.tensor2d(pass.negativeRows, [size * length, d]),
      ...names.map((name) => {
        const t = tableOf(name);
        return tf.tensor2d(t.values, [t.rows, t.dimension]);
      }),
    ];
    const mask = tf.tensor3d(pass.inputMask, [size, length, 1]);
    const weight = tf.tensor1d(pass.targetMask);
    const f = (...args: tfc.Tensor[]): tfc.Scalar => {
      const dense: Record<string, tfc.Tensor2D> = {};
      names.forEach((name, k) => (dense[name] = args[3 + k] as tfc.Tensor2D));
      const hidden = model.encode(tf, {
        size,
        length,
        positionOffset: pass.positionOffset,
        itemRows: tf.reshape(args[0]!, [size, length, d]),
        mask,
        dense,
        training: pass.training,
        dropout: seededDropout(tf, pass.training, pass.seed),
      });
      const h = tf.reshape(hidden, [size * length, d]);
      const pos = tf.sum(tf.mul(h, args[1]!), 1);
      const neg = tf.sum(tf.mul(h, args[2]!), 1);
      // -log sigma(pos) - log(1 - sigma(neg)) = softplus(-pos) + softplus(neg)
      const perPosition = tf.add(tf.softplus(tf.neg(pos)), tf.softplus(neg));
      return tf.div(tf.sum(tf.mul(perPosition, weight)), pass.targets) as tfc.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(f)(xs);
    result = {
      loss: value.dataSync()[0]!,
      grads: grads.map((g) => g.dataSync() as Float32Array),
    };
  });
  const dense = new Map<string, Float32Array>();
  names.forEach((name, k) => dense.set(name, result.grads[3 + k]!));
  return {
    loss: result.loss,
    inputRows: result.grads[0]!,
    positiveRows: result.grads[1]!,
    negativeRows: result.grads[2]!,
    dense,
  };
}
