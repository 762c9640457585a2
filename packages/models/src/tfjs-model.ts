import type * as tfc from '@tensorflow/tfjs-core';
import { ConfigError } from '@advrec/data';
import { MODEL_SPECIFICATION_VERSION } from './model.js';
import type {
  JsonObject,
  Model,
  ModelState,
  PerturbableSurface,
  ReferenceScore,
  Tfjs,
} from './model.js';
import { SparseRows } from './sparse-rows.js';
import type { SparseRowsByName } from './sparse-rows.js';
import { createTable, initializeTruncatedNormal } from './tables.js';
import type { ParameterTable, Side } from './tables.js';
import { registerModel } from './registry.js';

/** A table of a tfjs-defined model. */
export interface TfjsTableSpec {
  readonly name: string;
  readonly side: Side;
  readonly dimension: number;
  /** Truncated-normal initialisation std (default 0.01). */
  readonly initStd?: number;
  /** Whether an adversary may perturb it (default true). */
  readonly perturbable?: boolean;
}

/** A plugin model defined by its tables and a tfjs score function of the gathered rows. */
export interface TfjsModelDefinition {
  readonly modelName: string;
  readonly description: string;
  readonly tables: readonly TfjsTableSpec[];
  readonly score: ReferenceScore;
}

/**
 * A Model whose forward and backward passes run the definition's tfjs score function on
 * the gathered rows (autodiff w.r.t. those rows only: never through a gather on a whole
 * table). This is how plugin models train, on whatever backend `tf` runs.
 */
export class TfjsModel implements Model {
  readonly specificationVersion = MODEL_SPECIFICATION_VERSION;
  readonly modelName: string;
  readonly config: JsonObject;
  readonly numUsers: number;
  readonly numItems: number;
  readonly tables: readonly ParameterTable[];
  readonly trainableTables: readonly string[];
  readonly surfaces: readonly PerturbableSurface[];
  readonly reference: ReferenceScore;
  private readonly tf: Tfjs;
  private readonly definition: TfjsModelDefinition;

  /** The tfjs backend running this model (`tensorflow` with tfjs-node, `wasm`, `cpu`). */
  get backend(): string {
    return this.tf.getBackend();
  }

  constructor(
    tf: Tfjs,
    definition: TfjsModelDefinition,
    dimensions: { numUsers: number; numItems: number },
    options: { seed?: number; tables?: readonly ParameterTable[] } = {},
  ) {
    this.tf = tf;
    this.definition = definition;
    this.modelName = definition.modelName;
    this.numUsers = dimensions.numUsers;
    this.numItems = dimensions.numItems;
    this.config = { seed: options.seed ?? 0 };
    this.tables = definition.tables.map((spec, index) => {
      const rows = spec.side === 'user' ? this.numUsers : this.numItems;
      const given = options.tables?.find((t) => t.name === spec.name);
      if (given) {
        if (given.rows !== rows || given.dimension !== spec.dimension)
          throw new ConfigError([
            {
              path: `tables.${spec.name}`,
              message: `expected ${rows} x ${spec.dimension}, found ${given.rows} x ${given.dimension}`,
            },
          ]);
        return given;
      }
      const table = createTable(spec.name, spec.side, rows, spec.dimension);
      initializeTruncatedNormal(table, options.seed ?? 0, index + 1, spec.initStd ?? 0.01);
      return table;
    });
    this.trainableTables = this.tables.map((t) => t.name);
    this.surfaces = definition.tables
      .filter((s) => s.perturbable !== false)
      .map((s) => ({
        name: s.name,
        side: s.side,
        rows: s.side === 'user' ? this.numUsers : this.numItems,
        dimension: s.dimension,
      }));
    this.reference = definition.score;
  }

  private gather(
    side: Side,
    ids: Int32Array,
    count: number,
    perturbations?: SparseRowsByName,
  ): Record<string, tfc.Tensor2D> {
    const out: Record<string, tfc.Tensor2D> = {};
    for (const table of this.tables) {
      if (table.side !== side) continue;
      const d = table.dimension;
      const rows = new Float32Array(count * d);
      const delta = perturbations?.get(table.name);
      for (let t = 0; t < count; t++) {
        const id = ids[t]!;
        if (!(id >= 0 && id < table.rows))
          throw new RangeError(`${side} id ${id} at position ${t} is outside [0, ${table.rows})`);
        rows.set(table.values.subarray(id * d, id * d + d), t * d);
        const o = delta ? delta.offsetOf(id) : -1;
        if (o >= 0) for (let f = 0; f < d; f++) rows[t * d + f]! += delta!.values[o + f]!;
      }
      out[table.name] = this.tf.tensor2d(rows, [count, d]);
    }
    return out;
  }

  pairScores(
    users: Int32Array,
    items: Int32Array,
    count: number,
    perturbations?: SparseRowsByName,
  ): Float64Array {
    const tf = this.tf;
    const scores = tf.tidy(() =>
      this.definition.score(
        tf,
        this.gather('user', users, count, perturbations),
        this.gather('item', items, count, perturbations),
        {},
      ),
    );
    const out = Float64Array.from(scores.dataSync());
    scores.dispose();
    return out;
  }

  score(users: Int32Array, items: Int32Array): Float64Array {
    if (users.length !== items.length) throw new RangeError('users and items differ in length');
    return this.pairScores(users, items, users.length);
  }

  scoreAll(users: Int32Array, out?: Float64Array): Float64Array {
    const n = this.numItems;
    const result = out ?? new Float64Array(users.length * n);
    const items = Int32Array.from({ length: n }, (_, i) => i);
    const repeated = new Int32Array(n);
    for (let b = 0; b < users.length; b++) {
      repeated.fill(users[b]!);
      result.set(this.pairScores(repeated, items, n), b * n);
    }
    return result;
  }

  pairBackward(
    users: Int32Array,
    items: Int32Array,
    count: number,
    dScores: Float64Array,
    gradients: SparseRowsByName,
    perturbations?: SparseRowsByName,
  ): void {
    const tf = this.tf;
    const userRows = this.gather('user', users, count, perturbations);
    const itemRows = this.gather('item', items, count, perturbations);
    const names = [...Object.keys(userRows), ...Object.keys(itemRows)];
    const inputs = [...Object.values(userRows), ...Object.values(itemRows)];
    const weights = tf.tensor1d(Float32Array.from(dScores.subarray(0, count)));
    const grads = tf.grads((...xs: tfc.Tensor[]) => {
      const u: Record<string, tfc.Tensor2D> = {};
      const i: Record<string, tfc.Tensor2D> = {};
      names.forEach((name, k) => {
        const target = k < Object.keys(userRows).length ? u : i;
        target[name] = xs[k] as tfc.Tensor2D;
      });
      return tf.sum(tf.mul(this.definition.score(tf, u, i, {}), weights));
    })(inputs);
    names.forEach((name, k) => {
      const table = this.tables.find((t) => t.name === name)!;
      const d = table.dimension;
      const values = grads[k]!.dataSync();
      let rows = gradients.get(name);
      if (!rows) {
        rows = new SparseRows(d, 1024);
        gradients.set(name, rows);
      }
      const ids = table.side === 'user' ? users : items;
      for (let t = 0; t < count; t++) {
        const o = rows.ensure(ids[t]!);
        const v = rows.values;
        for (let f = 0; f < d; f++) v[o + f]! += values[t * d + f]!;
      }
    });
    tf.dispose([...inputs, weights, ...grads]);
  }
}

/**
 * Registers a tfjs-defined model under its name so configs, the CLI (`--model`) and
 * checkpoints find it. `tf` must have gradients registered (see `loadTfjs`).
 */
export function registerTfjsModel(tf: Tfjs, definition: TfjsModelDefinition): void {
  registerModel({
    specificationVersion: MODEL_SPECIFICATION_VERSION,
    modelName: definition.modelName,
    description: definition.description,
    create: (context, config) =>
      new TfjsModel(tf, definition, context, {
        seed: typeof config.seed === 'number' ? config.seed : context.seed,
      }),
    restore: (state: ModelState) =>
      new TfjsModel(tf, definition, state, {
        seed: Number(state.config.seed ?? 0),
        tables: state.tables,
      }),
  });
}
