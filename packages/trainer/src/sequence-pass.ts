import type * as tfc from '@tensorflow/tfjs-core';
import { ConfigError, DataError } from '@advrec/data';
import type { SequenceBatch } from '@advrec/data';
import { SEQUENCE_ITEM_TABLE, seededDropout } from '@advrec/models';
import type {
  ParameterTable,
  SequencePass,
  SequencePassGradients,
  SequentialModel,
  Tfjs,
} from '@advrec/models';

/**
 * What training, evaluation and attacks of a sequential model share: its tables by name, a
 * batch as a {@link SequencePass} (item rows gathered, perturbed when asked), the pass's row
 * gradients scattered back into an item-table gradient, and the hidden states of sequences.
 */

/** The model's table called `name`. @internal */
export function tableOf(model: SequentialModel, name: string): ParameterTable {
  const table = model.tables.find((t) => t.name === name);
  if (!table) throw new ConfigError([{ path: 'model.tables', message: `no table "${name}"` }]);
  return table;
}

/** Refuses an item id outside the model (`-1` is padding). @internal */
export function checkItems(model: SequentialModel, ids: Int32Array, what: string): void {
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k]!;
    if (id >= model.numItems || id < -1 || !Number.isInteger(id))
      throw new DataError(
        `${what}: item id ${id} at position ${k} is outside the model's ${model.numItems} items`,
      );
  }
}

/** Gathers item rows (`-1` = a zero row), adding the perturbation rows when given. */
export function gatherRows(
  table: Float32Array,
  dimension: number,
  ids: Int32Array,
  perturbation?: Float32Array,
): Float32Array {
  const out = new Float32Array(ids.length * dimension);
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k]!;
    if (id < 0) continue;
    const from = id * dimension;
    const to = k * dimension;
    for (let c = 0; c < dimension; c++) out[to + c] = table[from + c]!;
    if (perturbation)
      for (let c = 0; c < dimension; c++) out[to + c] = out[to + c]! + perturbation[from + c]!;
  }
  return out;
}

export function denseNames(model: SequentialModel): string[] {
  return model.tables.filter((t) => t.side === 'dense').map((t) => t.name);
}

/**
 * The hidden states of a batch (`size x length x dimension`, as a Float32Array), with the
 * item table perturbed by `perturbation` (`numItems x dimension`) when given. No gradient.
 */
export function encodeSequences(
  tf: Tfjs,
  model: SequentialModel,
  inputs: Int32Array,
  size: number,
  length: number,
  options: {
    readonly perturbation?: Float32Array;
    readonly training?: boolean;
    readonly seed?: number;
  } = {},
): Float32Array {
  checkItems(model, inputs, 'sequence');
  const items = tableOf(model, SEQUENCE_ITEM_TABLE);
  const d = model.dimension;
  // tidy must return no typed array: it would walk every element looking for tensors.
  let result: Float32Array = new Float32Array(0);
  tf.tidy(() => {
    const dense: Record<string, tfc.Tensor2D> = {};
    for (const name of denseNames(model)) {
      const t = tableOf(model, name);
      dense[name] = tf.tensor2d(t.values, [t.rows, t.dimension]);
    }
    const mask = tf.tensor3d(
      Float32Array.from(inputs, (i) => (i >= 0 ? 1 : 0)),
      [size, length, 1],
    );
    const hidden = model.encode(tf, {
      size,
      length,
      positionOffset: model.maxLength - length,
      itemRows: tf.tensor3d(gatherRows(items.values, d, inputs, options.perturbation), [
        size,
        length,
        d,
      ]),
      mask,
      dense,
      training: options.training ?? false,
      dropout: seededDropout(tf, options.training ?? false, options.seed ?? 0),
    });
    result = hidden.dataSync() as Float32Array;
  });
  return result;
}

/** Loss and gradients of one batch: item-table gradient as (row -> values), dense gradients whole. */
export interface BatchGradients {
  loss: number;
  /** Gradient of the item table, `numItems x dimension`, nonzero only on `touched` rows. */
  items: Float32Array;
  touched: Int32Array;
  dense: ReadonlyMap<string, Float32Array>;
}

/** A batch as a {@link SequencePass}: its item rows gathered (and perturbed when given). */
export function passOf(
  model: SequentialModel,
  batch: SequenceBatch,
  training: boolean,
  seed: number,
  perturbation?: Float32Array,
  items: Float32Array = tableOf(model, SEQUENCE_ITEM_TABLE).values,
): SequencePass {
  const d = model.dimension;
  return {
    size: batch.size,
    length: batch.length,
    positionOffset: model.maxLength - batch.length,
    inputRows: gatherRows(items, d, batch.inputs, perturbation),
    positiveRows: gatherRows(items, d, batch.positives, perturbation),
    negativeRows: gatherRows(items, d, batch.negatives, perturbation),
    inputMask: Float32Array.from(batch.inputs, (i) => (i >= 0 ? 1 : 0)),
    targetMask: Float32Array.from(batch.positives, (i) => (i >= 0 ? 1 : 0)),
    targets: Math.max(1, batch.targets),
    training,
    seed,
  };
}

/** Adds a pass's row gradients into the item-table gradient; returns the touched rows. */
export function scatterRows(
  d: number,
  batch: SequenceBatch,
  gradients: SequencePassGradients,
  itemGradient: Float32Array,
  weight = 1,
): Int32Array {
  const touchedSet = new Set<number>();
  for (const [ids, grad] of [
    [batch.inputs, gradients.inputRows],
    [batch.positives, gradients.positiveRows],
    [batch.negatives, gradients.negativeRows],
  ] as const) {
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      if (id < 0) continue;
      touchedSet.add(id);
      const to = id * d;
      const from = k * d;
      // The weighted row rounded to float32 first, as a weighted pass's own rows would be.
      if (weight === 1)
        for (let c = 0; c < d; c++) itemGradient[to + c] = itemGradient[to + c]! + grad[from + c]!;
      else
        for (let c = 0; c < d; c++)
          itemGradient[to + c] = itemGradient[to + c]! + Math.fround(grad[from + c]! * weight);
    }
  }
  return Int32Array.from(touchedSet);
}
