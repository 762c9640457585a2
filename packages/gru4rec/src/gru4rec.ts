import type * as tfc from '@tensorflow/tfjs-core';
import {
  SequentialModelBase,
  SEQUENCE_ITEM_TABLE,
  builtModule,
  createTable,
  initializeGlorotUniform,
  resolveModelOptions,
} from '@advrec/models';
import type { ParameterTable, SequenceEncoder, SequenceEncoderInputs, Tfjs } from '@advrec/models';
import { createPassKernel } from './kernel.js';

/** Registered name of {@link GRU4Rec}. */
export const GRU4REC_MODEL_NAME = 'gru4rec';

/** Table names: the GRU's input weights W (`d x 3h`: update, reset, candidate), recurrent weights U (`h x 3h`), biases, and the output projection (`h x d`). */
export const GRU_INPUT_WEIGHTS = 'gruInputWeights';
export const GRU_RECURRENT_WEIGHTS = 'gruRecurrentWeights';
export const GRU_INPUT_BIAS = 'gruInputBias';
export const GRU_RECURRENT_BIAS = 'gruRecurrentBias';
export const OUTPUT_WEIGHTS = 'outputWeights';
export const OUTPUT_BIAS = 'outputBias';

/** Configuration of {@link GRU4Rec}. */
export interface GRU4RecConfig {
  /** d, the item embedding size (default 64, as RecBole's GRU4Rec). */
  readonly dimension?: number;
  /** h, the GRU's hidden size (default 64). */
  readonly hiddenSize?: number;
  /** Longest history read (default 50). */
  readonly maxLength?: number;
  /** Dropout on the input embeddings (default 0.3, RecBole's `dropout_prob`). */
  readonly dropout?: number;
  /** Seed of the initialisation (default 0). */
  readonly seed?: number;
}

/** The resolved configuration (what checkpoints store). */
export interface ResolvedGRU4RecConfig {
  readonly dimension: number;
  readonly hiddenSize: number;
  readonly maxLength: number;
  readonly dropout: number;
  readonly seed: number;
}

/** Validates and fills in a GRU4Rec configuration; every problem is reported at once. */
export function resolveGRU4RecConfig(config: GRU4RecConfig = {}): ResolvedGRU4RecConfig {
  const r = resolveModelOptions(GRU4REC_MODEL_NAME, config, {
    integers: { dimension: [64, 1], hiddenSize: [64, 1], maxLength: [50, 1], seed: [0, 0] },
    rates: { dropout: 0.3 },
  });
  return {
    dimension: r.dimension!,
    hiddenSize: r.hiddenSize!,
    maxLength: r.maxLength!,
    dropout: r.dropout!,
    seed: r.seed!,
  };
}

/**
 * GRU4Rec's encoder in tfjs-core: the item embeddings (dropout) feed a GRU
 * (`z = sigma(x W_z + h U_z + b)`, `r = sigma(x W_r + h U_r + b)`,
 * `n = tanh(x W_n + b_n + r (h U_n + b'_n))`, `h' = (1 - z) n + z h`), whose state at
 * every position is projected to the item space. Padding is on the left and leaves the state
 * at zero, so a short batch equals the same sequences padded to `maxLength`.
 */
export function gru4recEncoder(config: ResolvedGRU4RecConfig): SequenceEncoder {
  const { dimension: d, hiddenSize: h, dropout } = config;
  return (tf: Tfjs, x: SequenceEncoderInputs): tfc.Tensor3D => {
    const { size, length, dense } = x;
    const inputs = tf.mul(x.dropout(x.itemRows, dropout), x.mask);
    // Input contributions of all positions at once: (size * length) x 3h.
    const projected = tf.reshape(
      tf.add(
        tf.matMul(tf.reshape(inputs, [size * length, d]), dense[GRU_INPUT_WEIGHTS]!),
        dense[GRU_INPUT_BIAS]!,
      ),
      [size, length, 3 * h],
    );
    const recurrent = dense[GRU_RECURRENT_WEIGHTS]!;
    const recurrentBias = dense[GRU_RECURRENT_BIAS]!;
    let state = tf.zeros([size, h]) as tfc.Tensor2D;
    const states: tfc.Tensor2D[] = [];
    for (let t = 0; t < length; t++) {
      const xt = tf.reshape(tf.slice(projected, [0, t, 0], [size, 1, 3 * h]), [size, 3 * h]);
      const ht = tf.add(tf.matMul(state, recurrent), recurrentBias);
      const [xz, xr, xn] = tf.split(xt, 3, 1) as [tfc.Tensor2D, tfc.Tensor2D, tfc.Tensor2D];
      const [hz, hr, hn] = tf.split(ht, 3, 1) as [tfc.Tensor2D, tfc.Tensor2D, tfc.Tensor2D];
      const z = tf.sigmoid(tf.add(xz, hz));
      const r = tf.sigmoid(tf.add(xr, hr));
      const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
      const next = tf.add(tf.mul(tf.sub(1, z), n), tf.mul(z, state)) as tfc.Tensor2D;
      const m = tf.reshape(tf.slice(x.mask, [0, t, 0], [size, 1, 1]), [size, 1]);
      // Padding keeps the state (zero until the first real item).
      state = tf.add(tf.mul(m, next), tf.mul(tf.sub(1, m), state)) as tfc.Tensor2D;
      states.push(state);
    }
    const all = tf.reshape(tf.stack(states, 1), [size * length, h]);
    const out = tf.add(tf.matMul(all, dense[OUTPUT_WEIGHTS]!), dense[OUTPUT_BIAS]!);
    return tf.reshape(out, [size, length, d]);
  };
}

/**
 * GRU4Rec (Hidasi et al., ICLR 2016) through the sequential Model contract, as RecBole and
 * ATSRec use it: item embeddings, one GRU layer, a projection of the hidden state to the
 * item space, scored by inner product with the item embeddings; trained with the
 * sequential trainer's next-item loss (not the paper's session-parallel TOP1 loss).
 */
export class GRU4Rec extends SequentialModelBase<ResolvedGRU4RecConfig> {
  constructor(numItems: number, config: GRU4RecConfig = {}, tables?: readonly ParameterTable[]) {
    const c = resolveGRU4RecConfig(config);
    const { dimension: d, hiddenSize: h } = c;
    super({
      modelName: GRU4REC_MODEL_NAME,
      label: 'GRU4Rec',
      numItems,
      resolved: c,
      tables: [
        createTable(SEQUENCE_ITEM_TABLE, 'item', numItems, d, true, 'dimension'),
        createTable(GRU_INPUT_WEIGHTS, 'dense', d, 3 * h, true, 'hiddenSize'),
        createTable(GRU_RECURRENT_WEIGHTS, 'dense', h, 3 * h, true, 'hiddenSize'),
        createTable(GRU_INPUT_BIAS, 'dense', 1, 3 * h, true, 'hiddenSize'),
        createTable(GRU_RECURRENT_BIAS, 'dense', 1, 3 * h, true, 'hiddenSize'),
        createTable(OUTPUT_WEIGHTS, 'dense', h, d, true, 'hiddenSize'),
        createTable(OUTPUT_BIAS, 'dense', 1, d, true, 'dimension'),
      ],
      restore: tables,
      initialize: (fresh) => {
        initializeGlorotUniform(fresh[0]!, c.seed, 0);
        // Per gate, Glorot over (in, h), as Keras initialises each gate's kernel.
        initializeGlorotUniform(fresh[1]!, c.seed, 1, d, h);
        initializeGlorotUniform(fresh[2]!, c.seed, 2, h, h);
        initializeGlorotUniform(fresh[5]!, c.seed, 5);
      },
      encode: gru4recEncoder(c),
      // The hand-written pass (`GRU4RecGradientKernel`).
      kernel: { module: builtModule(import.meta.url, 'kernel.js'), createPassKernel },
    });
  }
}
