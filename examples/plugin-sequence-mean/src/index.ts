/**
 * An example advrec plugin: a sequential model defined only through the sequential Model
 * contract of `@advrec/models`. Importing this module registers it as `sequence-mean`, so
 * `advrec --plugin @advrec/example-plugin-sequence-mean train --model sequence-mean` trains
 * it (with ATSRec's perturbations of its item embeddings when asked), and `evaluate`,
 * `attack`, `recommend`, `export`, `train --resume` and sweeps take its run folders, without
 * changing advrec.
 *
 * The model: the hidden state after position t is the mean of the item rows seen up to t
 * (padding excluded), through one dense layer (`h_t = mean(e_1..e_t) W + b`); the next item
 * is scored by the inner product of `h_t` with its row. A bag-of-recent-items baseline (order
 * within the window is ignored), small enough to read in one sitting.
 *
 * @packageDocumentation
 */
import type * as tfc from '@tensorflow/tfjs-core';
import {
  SEQUENCE_ITEM_TABLE,
  SEQUENTIAL_MODEL_SPECIFICATION_VERSION,
  SequentialModelBase,
  createTable,
  initializeGlorotUniform,
  registerSequentialModel,
  resolveModelOptions,
} from '@advrec/models';
import type {
  JsonObject,
  ParameterTable,
  SequenceEncoder,
  SequentialModelFactory,
} from '@advrec/models';

/** Registered name of {@link SequenceMean}. */
export const SEQUENCE_MEAN_MODEL_NAME = 'sequence-mean';

/** Table names of the dense layer after the mean (`d x d` and `1 x d`). */
export const MEAN_WEIGHTS = 'meanWeights';
export const MEAN_BIAS = 'meanBias';

/** Configuration of {@link SequenceMean}. */
export interface SequenceMeanConfig {
  /** d, the item embedding size (default 32). */
  readonly dimension?: number;
  /** Longest history read (default 20): the mean covers the last `maxLength` items. */
  readonly maxLength?: number;
  /** Dropout on the input item rows (default 0.2). */
  readonly dropout?: number;
  /** Seed of the initialisation (default 0). */
  readonly seed?: number;
}

/** The resolved configuration (what checkpoints store). */
export interface ResolvedSequenceMeanConfig {
  readonly dimension: number;
  readonly maxLength: number;
  readonly dropout: number;
  readonly seed: number;
}

/** Validates and fills in a configuration; every problem is reported at once, by field. */
export function resolveSequenceMeanConfig(
  config: SequenceMeanConfig = {},
): ResolvedSequenceMeanConfig {
  const r = resolveModelOptions(SEQUENCE_MEAN_MODEL_NAME, config, {
    integers: { dimension: [32, 1], maxLength: [20, 1], seed: [0, 0] },
    rates: { dropout: 0.2 },
  });
  return { dimension: r.dimension!, maxLength: r.maxLength!, dropout: r.dropout!, seed: r.seed! };
}

/**
 * The encoder: a causal running mean over real positions (a lower-triangular product over
 * the positions, divided by the count of real items so far), then the dense layer. Padding
 * rows are zero and not counted, so a short batch equals the same sequences padded longer.
 */
export function sequenceMeanEncoder(config: ResolvedSequenceMeanConfig): SequenceEncoder {
  const { dimension: d, dropout } = config;
  return (tf, x): tfc.Tensor3D => {
    const { size, length, dense } = x;
    const rows = tf.mul(x.dropout(x.itemRows, dropout), x.mask) as tfc.Tensor3D;
    // length x length, 1 where column <= row: sums over the positions up to each one.
    const lower = tf.linalg.bandPart(tf.ones([length, length]), -1, 0) as tfc.Tensor2D;
    const byPosition = (t: tfc.Tensor3D, width: number): tfc.Tensor2D =>
      tf.reshape(tf.transpose(t, [1, 0, 2]), [length, size * width]);
    const sums = tf.matMul(lower, byPosition(rows, d));
    const counts = tf.maximum(tf.matMul(lower, byPosition(x.mask, 1)), 1);
    const means = tf.div(
      tf.reshape(sums, [length, size, d]),
      tf.reshape(counts, [length, size, 1]),
    );
    const flat = tf.reshape(tf.transpose(means, [1, 0, 2]), [size * length, d]);
    const hidden = tf.add(tf.matMul(flat, dense[MEAN_WEIGHTS]!), dense[MEAN_BIAS]!);
    return tf.reshape(hidden, [size, length, d]);
  };
}

/** The causal-mean sequential model (see the module's documentation). */
export class SequenceMean extends SequentialModelBase<ResolvedSequenceMeanConfig> {
  constructor(
    numItems: number,
    config: SequenceMeanConfig = {},
    tables?: readonly ParameterTable[],
  ) {
    const c = resolveSequenceMeanConfig(config);
    // The base fills the contract's fields, checks numItems, restores the checkpoint's tables
    // or calls `initialize`, and makes the item table the one surface ATSRec perturbs.
    super({
      modelName: SEQUENCE_MEAN_MODEL_NAME,
      label: 'SequenceMean',
      numItems,
      resolved: c,
      tables: [
        createTable(SEQUENCE_ITEM_TABLE, 'item', numItems, c.dimension, true, 'dimension'),
        createTable(MEAN_WEIGHTS, 'dense', c.dimension, c.dimension, true, 'dimension'),
        createTable(MEAN_BIAS, 'dense', 1, c.dimension, true, 'dimension'),
      ],
      restore: tables,
      initialize: (fresh) => {
        initializeGlorotUniform(fresh[0]!, c.seed, 0);
        initializeGlorotUniform(fresh[1]!, c.seed, 1);
      },
      encode: sequenceMeanEncoder(c),
    });
  }
}

/** The registry entry (registered when this module is imported). */
export const sequenceMeanFactory: SequentialModelFactory = {
  kind: 'sequential',
  specificationVersion: SEQUENTIAL_MODEL_SPECIFICATION_VERSION,
  modelName: SEQUENCE_MEAN_MODEL_NAME,
  description:
    'example plugin: the causal mean of the items seen so far through one dense layer; ATSRec perturbs its item embeddings',
  create(context, config) {
    const { seed, ...rest } = config as SequenceMeanConfig & JsonObject;
    return new SequenceMean(context.numItems, {
      ...(rest as SequenceMeanConfig),
      seed: typeof seed === 'number' ? seed : context.seed,
    });
  },
  restore(state) {
    return new SequenceMean(state.numItems, state.config as SequenceMeanConfig, state.tables);
  },
};

registerSequentialModel(sequenceMeanFactory);
