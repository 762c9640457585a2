import type { InteractionMatrix } from '@advrec/data';
import { ConfigError } from '@advrec/data';
import type { JsonObject, Model, ModelState, PerturbableSurface } from './model.js';
import { MODEL_SPECIFICATION_VERSION } from './model.js';
import type { SparseRowsByName } from './sparse-rows.js';
import { createTable } from './tables.js';
import type { ParameterTable } from './tables.js';
import { checkPairs, checkUsers } from './validate.js';

/** Registered name of {@link ItemPop}. */
export const ITEM_POP_MODEL_NAME = 'item-pop';

/**
 * ItemPop (APR section 4.1.3): every user gets the items ranked by their number of
 * training interactions. Non-personalised, nothing to train, no surface to perturb.
 */
export class ItemPop implements Model {
  readonly specificationVersion = MODEL_SPECIFICATION_VERSION;
  readonly modelName = ITEM_POP_MODEL_NAME;
  readonly config: JsonObject = {};
  readonly numUsers: number;
  readonly numItems: number;
  /** Training interactions per item, `numItems x 1`. */
  readonly itemPopularity: ParameterTable;
  readonly tables: readonly ParameterTable[];
  readonly trainableTables: readonly string[] = [];
  readonly surfaces: readonly PerturbableSurface[] = [];
  readonly reference = undefined;
  private readonly zeroUsers: Float32Array;

  /** Counts the training interactions of every item. */
  constructor(train: InteractionMatrix, popularity?: ParameterTable) {
    this.numUsers = train.numUsers;
    this.numItems = train.numItems;
    if (popularity) {
      if (popularity.rows !== this.numItems || popularity.dimension !== 1)
        throw new ConfigError([
          {
            path: 'tables.itemPopularity',
            message: `expected ${this.numItems} x 1, found ${popularity.rows} x ${popularity.dimension}`,
          },
        ]);
      this.itemPopularity = popularity;
    } else {
      this.itemPopularity = createTable('itemPopularity', 'item', this.numItems, 1);
      const degrees = train.itemDegrees();
      for (let i = 0; i < this.numItems; i++) this.itemPopularity.values[i] = degrees[i]!;
    }
    this.tables = [this.itemPopularity];
    this.zeroUsers = new Float32Array(this.numUsers);
  }

  /** Rebuilds ItemPop from a checkpoint's state. */
  static restore(state: ModelState): ItemPop {
    const table = state.tables.find((t) => t.name === 'itemPopularity');
    if (!table)
      throw new ConfigError([{ path: 'tables', message: 'an ItemPop state needs itemPopularity' }]);
    const fake = {
      numUsers: state.numUsers,
      numItems: state.numItems,
      itemDegrees: () => new Int32Array(0),
    };
    return new ItemPop(fake as unknown as InteractionMatrix, table);
  }

  /** Factors for the evaluator: zero user factors and the popularity as item bias. */
  factors(): {
    userFactors: Float32Array;
    itemFactors: Float32Array;
    dimension: number;
    itemBias: Float32Array;
  } {
    return {
      userFactors: this.zeroUsers,
      itemFactors: new Float32Array(this.numItems),
      dimension: 1,
      itemBias: this.itemPopularity.values,
    };
  }

  score(users: Int32Array, items: Int32Array): Float64Array {
    return this.pairScores(users, items, users.length);
  }

  scoreAll(users: Int32Array, out?: Float64Array): Float64Array {
    checkUsers(this, users);
    const n = this.numItems;
    const result = out ?? new Float64Array(users.length * n);
    for (let b = 0; b < users.length; b++)
      for (let i = 0; i < n; i++) result[b * n + i] = this.itemPopularity.values[i]!;
    return result;
  }

  pairScores(users: Int32Array, items: Int32Array, count: number): Float64Array {
    checkPairs(this, users, items, count);
    const out = new Float64Array(count);
    for (let t = 0; t < count; t++) out[t] = this.itemPopularity.values[items[t]!]!;
    return out;
  }

  /** ItemPop has no trainable parameter: the backward pass adds nothing. */
  pairBackward(
    users: Int32Array,
    items: Int32Array,
    count: number,
    _dScores: Float64Array,
    _gradients: SparseRowsByName,
  ): void {
    checkPairs(this, users, items, count);
  }
}
