import type * as tfc from '@tensorflow/tfjs-core';
import { createPassKernel } from './kernel.js';
import {
  SequentialModelBase,
  SEQUENCE_ITEM_TABLE,
  builtModule,
  createTable,
  initializeGlorotUniform,
  matMulExplicitGradient,
  resolveModelOptions,
} from '@advrec/models';
import type { ParameterTable, SequenceEncoder, SequenceEncoderInputs, Tfjs } from '@advrec/models';

/** Registered name of {@link SASRec}. */
export const SASREC_MODEL_NAME = 'sasrec';

/** The learned position embeddings P (`maxLength x dimension`). */
export const POSITION_EMBEDDINGS = 'positionEmbeddings';

/** Configuration of {@link SASRec} (defaults: the SASRec paper's settings for Amazon Games). */
export interface SASRecConfig {
  /** d, the item embedding and hidden size (default 50). */
  readonly dimension?: number;
  /** n, the longest history read: the most recent n items (default 50). */
  readonly maxLength?: number;
  /** Self-attention blocks (default 2). */
  readonly blocks?: number;
  /** Dropout rate on embeddings, attention weights and feed-forward layers (default 0.5, the paper's rate for the sparse Amazon sets; 0.2 for ML-1M). */
  readonly dropout?: number;
  /** Seed of the initialisation (default 0). */
  readonly seed?: number;
}

/** The resolved configuration (what checkpoints store). */
export interface ResolvedSASRecConfig {
  readonly dimension: number;
  readonly maxLength: number;
  readonly blocks: number;
  readonly dropout: number;
  readonly seed: number;
}

/** Validates and fills in a SASRec configuration; every problem is reported at once. */
export function resolveSASRecConfig(config: SASRecConfig = {}): ResolvedSASRecConfig {
  const r = resolveModelOptions(SASREC_MODEL_NAME, config, {
    integers: { dimension: [50, 1], maxLength: [50, 1], blocks: [2, 1], seed: [0, 0] },
    rates: { dropout: 0.5 },
  });
  return {
    dimension: r.dimension!,
    maxLength: r.maxLength!,
    blocks: r.blocks!,
    dropout: r.dropout!,
    seed: r.seed!,
  };
}

/** Names of block b's tables. */
export const blockTable = (block: number, part: string): string => `block${block}.${part}`;

const BLOCK_MATRICES = ['query', 'key', 'value', 'feedForward1', 'feedForward2'] as const;
const BLOCK_NORMS = ['attentionNorm', 'feedForwardNorm'] as const;
/** The last layer norm's tables. */
export const OUTPUT_NORM = 'outputNorm';

/** A large negative logit: a masked key's attention weight underflows to exactly 0. */
const MASKED = -1e9;

function layerNorm(
  tf: Tfjs,
  x: tfc.Tensor3D,
  gamma: tfc.Tensor2D,
  beta: tfc.Tensor2D,
): tfc.Tensor3D {
  // SASRec's `normalize`: (x - mean) / sqrt(variance + 1e-8) * gamma + beta, over the last axis.
  const { mean, variance } = tf.moments(x, -1, true);
  const normalized = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-8)));
  return tf.add(
    tf.mul(normalized, tf.reshape(gamma, [-1])),
    tf.reshape(beta, [-1]),
  ) as tfc.Tensor3D;
}

function linear(
  tf: Tfjs,
  x: tfc.Tensor3D,
  weights: tfc.Tensor2D,
  bias: tfc.Tensor2D,
): tfc.Tensor3D {
  const [b, l, d] = x.shape;
  const y = tf.add(
    matMulExplicitGradient(tf, tf.reshape(x, [b * l, d]) as tfc.Tensor2D, weights),
    bias,
  );
  return tf.reshape(y, [b, l, weights.shape[1]]);
}

/**
 * SASRec's encoder in tfjs-core (Kang and McAuley, ICDM 2018, and the authors' code):
 * `E_input * sqrt(d) + P`, dropout, padding zeroed; then per block, causal single-head
 * self-attention with queries from the layer-normed input, keys and values from the input,
 * padded keys masked, the normed queries added back, then a point-wise two-layer
 * feed-forward network (ReLU) on the layer-normed result with a residual; padding zeroed
 * after each block; a final layer norm.
 */
export function sasrecEncoder(config: ResolvedSASRecConfig): SequenceEncoder {
  const { dimension: d, blocks, dropout } = config;
  return (tf: Tfjs, x: SequenceEncoderInputs): tfc.Tensor3D => {
    const { size, length, dense } = x;
    const positions = tf.slice(dense[POSITION_EMBEDDINGS]!, [x.positionOffset, 0], [length, d]);
    let seq = tf.add(tf.mul(x.itemRows, Math.sqrt(d)), positions) as tfc.Tensor3D;
    seq = x.dropout(seq, dropout);
    seq = tf.mul(seq, x.mask);
    // Causal + key-padding mask, as an additive bias: size x length x length.
    const keyReal = x.mask.dataSync();
    const bias = new Float32Array(size * length * length);
    for (let b = 0; b < size; b++)
      for (let q = 0; q < length; q++)
        for (let k = 0; k < length; k++)
          if (k > q || keyReal[b * length + k] === 0) bias[(b * length + q) * length + k] = MASKED;
    const attentionBias = tf.tensor3d(bias, [size, length, length]);
    const scale = 1 / Math.sqrt(d);
    for (let block = 0; block < blocks; block++) {
      const t = (part: string) => dense[blockTable(block, part)]!;
      const queries = layerNorm(tf, seq, t('attentionNorm.gamma'), t('attentionNorm.beta'));
      const q = linear(tf, queries, t('query.weights'), t('query.bias'));
      const k = linear(tf, seq, t('key.weights'), t('key.bias'));
      const v = linear(tf, seq, t('value.weights'), t('value.bias'));
      const logits = tf.add(
        tf.mul(matMulExplicitGradient(tf, q, tf.transpose(k, [0, 2, 1]) as tfc.Tensor3D), scale),
        attentionBias,
      );
      let weights = tf.softmax(logits) as tfc.Tensor3D;
      weights = tf.mul(weights, x.mask); // query masking: padded queries attend to nothing
      weights = x.dropout(weights, dropout);
      seq = tf.add(matMulExplicitGradient(tf, weights, v), queries) as tfc.Tensor3D;
      const normed = layerNorm(tf, seq, t('feedForwardNorm.gamma'), t('feedForwardNorm.beta'));
      let hidden = tf.relu(linear(tf, normed, t('feedForward1.weights'), t('feedForward1.bias')));
      hidden = x.dropout(hidden, dropout);
      let out = linear(
        tf,
        hidden as tfc.Tensor3D,
        t('feedForward2.weights'),
        t('feedForward2.bias'),
      );
      out = x.dropout(out, dropout);
      seq = tf.mul(tf.add(out, normed), x.mask) as tfc.Tensor3D;
    }
    return layerNorm(tf, seq, dense[`${OUTPUT_NORM}.gamma`]!, dense[`${OUTPUT_NORM}.beta`]!);
  };
}

/** The tables of a SASRec model, in checkpoint order. */
function sasrecTables(numItems: number, c: ResolvedSASRecConfig): ParameterTable[] {
  const d = c.dimension;
  const tables = [
    createTable(SEQUENCE_ITEM_TABLE, 'item', numItems, d, true, 'dimension'),
    createTable(POSITION_EMBEDDINGS, 'dense', c.maxLength, d, true, 'maxLength'),
  ];
  for (let b = 0; b < c.blocks; b++) {
    for (const norm of BLOCK_NORMS) {
      const gamma = createTable(blockTable(b, `${norm}.gamma`), 'dense', 1, d, true, 'dimension');
      gamma.values.fill(1);
      tables.push(
        gamma,
        createTable(blockTable(b, `${norm}.beta`), 'dense', 1, d, true, 'dimension'),
      );
    }
    for (const matrix of BLOCK_MATRICES)
      tables.push(
        createTable(blockTable(b, `${matrix}.weights`), 'dense', d, d, true, 'dimension'),
        createTable(blockTable(b, `${matrix}.bias`), 'dense', 1, d, true, 'dimension'),
      );
  }
  const gamma = createTable(`${OUTPUT_NORM}.gamma`, 'dense', 1, d, true, 'dimension');
  gamma.values.fill(1);
  tables.push(gamma, createTable(`${OUTPUT_NORM}.beta`, 'dense', 1, d, true, 'dimension'));
  return tables;
}

/**
 * SASRec through the sequential Model contract. Tables: `itemEmbeddings` (shared by inputs
 * and outputs, Glorot-initialised as in the authors' code), `positionEmbeddings`, and per
 * block the layer norms' gains and offsets, the query/key/value projections and the
 * feed-forward layers (Glorot weights, zero biases).
 */
export class SASRec extends SequentialModelBase<ResolvedSASRecConfig> {
  constructor(numItems: number, config: SASRecConfig = {}, tables?: readonly ParameterTable[]) {
    const c = resolveSASRecConfig(config);
    super({
      modelName: SASREC_MODEL_NAME,
      label: 'SASRec',
      numItems,
      resolved: c,
      tables: sasrecTables(numItems, c),
      restore: tables,
      initialize: (fresh) =>
        fresh.forEach((table, k) => {
          if (
            table.name === SEQUENCE_ITEM_TABLE ||
            table.name === POSITION_EMBEDDINGS ||
            table.name.endsWith('.weights')
          )
            initializeGlorotUniform(table, c.seed, k);
        }),
      encode: sasrecEncoder(c),
      // The hand-written pass (`SASRecGradientKernel`), at a fraction of tfjs-wasm's time per batch.
      kernel: { module: builtModule(import.meta.url, 'kernel.js'), createPassKernel },
    });
  }
}
