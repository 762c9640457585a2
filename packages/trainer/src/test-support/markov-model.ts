import { SEQUENCE_ITEM_TABLE, createTable, initializeGlorotUniform } from '@advrec/models';
import type { SequentialModel, Tfjs } from '@advrec/models';

/**
 * A minimal sequential plugin model: the hidden state is `tanh(x_t W)` of the last item only
 * (a first-order Markov model), so the trainer is tested without the model packages.
 */
export function markovModel(numItems: number, d = 8, seed = 1): SequentialModel {
  const items = createTable(SEQUENCE_ITEM_TABLE, 'item', numItems, d);
  const weights = createTable('transition', 'dense', d, d);
  initializeGlorotUniform(items, seed, 0);
  initializeGlorotUniform(weights, seed, 1);
  return {
    kind: 'sequential',
    specificationVersion: 'v2',
    modelName: 'test-markov',
    config: { d },
    numUsers: 0,
    numItems,
    maxLength: 5,
    dimension: d,
    tables: [items, weights],
    trainableTables: [SEQUENCE_ITEM_TABLE, 'transition'],
    surfaces: [{ name: SEQUENCE_ITEM_TABLE, side: 'item', rows: numItems, dimension: d }],
    encode: (t: Tfjs, x) =>
      t.reshape(
        t.tanh(t.matMul(t.reshape(x.itemRows, [x.size * x.length, d]), x.dense.transition!)),
        [x.size, x.length, d],
      ),
  };
}
