/**
 * The Model contract test suite, for plugin authors (and run by every built-in model):
 *
 * ```ts
 * import * as tf from '@tensorflow/tfjs';            // gradients registered
 * import { describeModelContract } from '@advrec/models/contract';
 * describeModelContract({ name: 'my-model', create: () => new MyModel(...), tf });
 * ```
 *
 * It checks that `score` and `scoreAll` agree, that `pairScores` equals the tfjs reference
 * definition (with and without perturbations), that `pairBackward` matches tfjs autodiff
 * of the reference on the gathered rows (max abs diff 1e-5), the same for the batch step
 * (`forwardPairs`, contract v2) when the model has one, that `factors()` (when present)
 * gives the same scores as `score`, that a checkpoint round trip
 * through the registry restores identical scores, and that bad ids are refused.
 *
 * @packageDocumentation
 */
import type * as tfc from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { DataError, Random } from '@advrec/data';
import { parseCheckpoint, serializeCheckpoint } from './checkpoint.js';
import type { Model, Tfjs } from './model.js';
import { restoreModel } from './registry.js';
import { SparseRows } from './sparse-rows.js';
import type { SparseRowsByName } from './sparse-rows.js';

/** Options of {@link describeModelContract}. */
export interface ModelContractOptions {
  /** Name shown in the test report. */
  readonly name: string;
  /** A fresh model with non-trivial parameters (registered, so it can be restored). */
  readonly create: () => Model;
  /** tfjs with gradients registered (e.g. `@tensorflow/tfjs`), for the reference checks. */
  readonly tf?: Tfjs;
  /** Max abs difference allowed against tfjs (default 1e-5). */
  readonly tolerance?: number;
  /** Pairs per random batch (default 48). */
  readonly pairs?: number;
}

function randomPairs(
  model: Model,
  count: number,
  seed: number,
): { users: Int32Array; items: Int32Array } {
  const random = new Random(seed);
  return {
    users: Int32Array.from({ length: count }, () => random.nextInt(model.numUsers)),
    items: Int32Array.from({ length: count }, () => random.nextInt(model.numItems)),
  };
}

function randomPerturbations(
  model: Model,
  users: Int32Array,
  items: Int32Array,
  seed: number,
): SparseRowsByName {
  const random = new Random(seed);
  const out: SparseRowsByName = new Map();
  for (const surface of model.surfaces) {
    const rows = new SparseRows(surface.dimension);
    for (const id of surface.side === 'user' ? users : items) {
      if (random.nextFloat() < 0.5) continue;
      const o = rows.ensure(id);
      for (let f = 0; f < surface.dimension; f++) rows.values[o + f] = 0.1 * random.nextGaussian();
    }
    out.set(surface.name, rows);
  }
  return out;
}

function gathered(
  tf: Tfjs,
  model: Model,
  side: 'user' | 'item' | 'dense',
  ids: Int32Array,
  perturbations?: SparseRowsByName,
): Record<string, tfc.Tensor2D> {
  const out: Record<string, tfc.Tensor2D> = {};
  for (const table of model.tables) {
    if (table.side !== side) continue;
    const d = table.dimension;
    if (side === 'dense') {
      out[table.name] = tf.tensor2d(table.values, [table.rows, d]);
      continue;
    }
    const rows = new Float32Array(ids.length * d);
    const delta = perturbations?.get(table.name);
    ids.forEach((id, t) => {
      for (let f = 0; f < d; f++) {
        const o = delta ? delta.offsetOf(id) : -1;
        rows[t * d + f] = table.values[id * d + f]! + (o >= 0 ? delta!.values[o + f]! : 0);
      }
    });
    out[table.name] = tf.tensor2d(rows, [ids.length, d]);
  }
  return out;
}

/** pairScores (and the batch step) against the model's tfjs reference, with and without perturbations. */
async function expectReferenceScores(
  options: ModelContractOptions,
  tolerance: number,
  count: number,
): Promise<void> {
  const model = options.create();
  if (!model.reference || !options.tf) throw new Error('unreachable: no reference');
  const tf = options.tf;
  const { users, items } = randomPairs(model, count, 2);
  const perturbations = randomPerturbations(model, users, items, 3);
  for (const p of [undefined, perturbations]) {
    const expected = model
      .reference(
        tf,
        gathered(tf, model, 'user', users, p),
        gathered(tf, model, 'item', items, p),
        gathered(tf, model, 'dense', users),
      )
      .dataSync();
    const paths: [string, Float64Array][] = [
      ['pairScores', model.pairScores(users, items, count, p)],
    ];
    if (model.forwardPairs)
      paths.push(['forwardPairs', (await model.forwardPairs(users, items, count, p)).scores]);
    for (const [path, actual] of paths)
      for (let t = 0; t < count; t++)
        expect(Math.abs(actual[t]! - expected[t]!), `${path}[${t}]`).toBeLessThanOrEqual(tolerance);
  }
}

/** pairBackward (and the batch step's backward) against tfjs autodiff of the reference. */
async function expectReferenceGradients(
  options: ModelContractOptions,
  tolerance: number,
  count: number,
): Promise<void> {
  const model = options.create();
  if (!model.reference || !options.tf) throw new Error('unreachable: no reference');
  const tf = options.tf;
  const { users, items } = randomPairs(model, count, 4);
  const random = new Random(5);
  const dScores = Float64Array.from({ length: count }, () => random.nextGaussian());
  for (const [path, p] of [
    ['pairBackward', undefined],
    ['pairBackward', randomPerturbations(model, users, items, 6)],
    ...(model.forwardPairs
      ? ([
          ['forwardPairs', undefined],
          ['forwardPairs', randomPerturbations(model, users, items, 6)],
        ] as const)
      : []),
  ] as const) {
    const gradients: SparseRowsByName = new Map();
    if (path === 'pairBackward') model.pairBackward(users, items, count, dScores, gradients, p);
    else await (await model.forwardPairs!(users, items, count, p)).backward(dScores, gradients);
    const u = gathered(tf, model, 'user', users, p);
    const i = gathered(tf, model, 'item', items, p);
    const dense = gathered(tf, model, 'dense', users);
    const groups = [u, i, dense];
    const names = groups.flatMap((g) => Object.keys(g));
    const inputs = groups.flatMap((g) => Object.values(g));
    const weights = tf.tensor1d(Float32Array.from(dScores));
    const grads = tf.grads((...xs: tfc.Tensor[]) => {
      const rebuilt = groups.map(() => ({}) as Record<string, tfc.Tensor2D>);
      let k = 0;
      groups.forEach((g, gi) => {
        for (const name of Object.keys(g)) rebuilt[gi]![name] = xs[k++] as tfc.Tensor2D;
      });
      return tf.sum(tf.mul(model.reference!(tf, rebuilt[0]!, rebuilt[1]!, rebuilt[2]!), weights));
    })(inputs);
    expectGradients(model, { path, names, grads, gradients, users, items, tolerance });
  }
}

/** The model's sparse gradients equal autodiff's (summed per row), on trainable tables and surfaces. */
function expectGradients(
  model: Model,
  check: {
    readonly path: string;
    readonly names: readonly string[];
    readonly grads: readonly tfc.Tensor[];
    readonly gradients: SparseRowsByName;
    readonly users: Int32Array;
    readonly items: Int32Array;
    readonly tolerance: number;
  },
): void {
  const { path, names, grads, gradients, users, items, tolerance } = check;
  // Trainable tables, and surfaces that are item/user tables without being trainable.
  const checked = new Set([...model.trainableTables, ...model.surfaces.map((s) => s.name)]);
  names.forEach((name, k) => {
    if (!checked.has(name)) return;
    const table = model.tables.find((t) => t.name === name)!;
    const d = table.dimension;
    const g = grads[k]!.dataSync();
    const expected = new Map<number, Float64Array>();
    if (table.side === 'dense') {
      for (let r = 0; r < table.rows; r++)
        expected.set(r, Float64Array.from(g.subarray(r * d, r * d + d)));
    } else {
      (table.side === 'user' ? users : items).forEach((id, t) => {
        const row = expected.get(id) ?? new Float64Array(d);
        for (let f = 0; f < d; f++) row[f]! += g[t * d + f]!;
        expected.set(id, row);
      });
    }
    const actual = gradients.get(name);
    expect(actual, `${path}: gradient of ${name}`).toBeDefined();
    expect([...actual!.rows].sort((a, b) => a - b)).toEqual(
      [...expected.keys()].sort((a, b) => a - b),
    );
    for (const [id, row] of expected) {
      const o = actual!.offsetOf(id);
      for (let f = 0; f < d; f++)
        expect(
          Math.abs(actual!.values[o + f]! - row[f]!),
          `${path}: ${name}[${id}][${f}]`,
        ).toBeLessThanOrEqual(tolerance);
    }
  });
}

/** Registers the contract tests for one model with vitest. */
export function describeModelContract(options: ModelContractOptions): void {
  const tolerance = options.tolerance ?? 1e-5;
  const count = options.pairs ?? 48;
  // Models without a reference definition (ItemPop: nothing to train) have no gradient to check.
  const withReference = options.tf !== undefined && options.create().reference !== undefined;
  const itWithReference = withReference ? it : (((): void => {}) as unknown as typeof it);
  describe(`${options.name} satisfies the Model contract`, () => {
    it('score agrees with scoreAll and with pairScores', () => {
      const model = options.create();
      const users = Int32Array.of(0, model.numUsers - 1, Math.floor(model.numUsers / 2));
      const all = model.scoreAll(users);
      expect(all.length).toBe(users.length * model.numItems);
      const { items } = randomPairs(model, 20, 1);
      for (let b = 0; b < users.length; b++) {
        const u = new Int32Array(items.length).fill(users[b]!);
        const scores = model.score(u, items);
        const pairs = model.pairScores(u, items, items.length);
        items.forEach((i, t) => {
          expect(scores[t]).toBeCloseTo(all[b * model.numItems + i]!, 9);
          // Training-time scores may use unrounded float64 factors (VBPR): equal to 1e-6.
          expect(pairs[t]).toBeCloseTo(scores[t]!, 6);
        });
      }
    });

    itWithReference(
      'pairScores (and the batch step, forwardPairs) equal the tfjs reference, with and without perturbations',
      () => expectReferenceScores(options, tolerance, count),
    );

    itWithReference(
      `pairBackward (and the batch step's backward) match tfjs autodiff of the reference (max abs diff ${tolerance})`,
      () => expectReferenceGradients(options, tolerance, count),
    );

    it('factors(), when present, give the scores of score() (float64 sums of float32 factors)', () => {
      const model = options.create();
      if (!model.factors) return;
      const f = model.factors();
      expect(f.userFactors.length).toBe(model.numUsers * f.dimension);
      expect(f.itemFactors.length).toBe(model.numItems * f.dimension);
      const { users, items } = randomPairs(model, 30, 7);
      const scores = model.score(users, items);
      users.forEach((u, t) => {
        let s = 0;
        for (let x = 0; x < f.dimension; x++)
          s += f.userFactors[u * f.dimension + x]! * f.itemFactors[items[t]! * f.dimension + x]!;
        if (f.itemBias) s += f.itemBias[items[t]!]!;
        expect(s).toBe(scores[t]);
      });
    });

    it('a checkpoint round trip through the registry restores identical scores', () => {
      const model = options.create();
      const bytes = Buffer.concat(serializeCheckpoint(model, [], { note: 'contract' }));
      const checkpoint = parseCheckpoint(bytes, 'contract.ckpt');
      expect(checkpoint.metadata.note).toBe('contract');
      const restored = restoreModel(checkpoint.model);
      expect(restored.modelName).toBe(model.modelName);
      expect(restored.config).toEqual(model.config);
      const users = Int32Array.of(0, model.numUsers - 1);
      expect(restored.scoreAll(users)).toEqual(model.scoreAll(users));
      // A truncated file is refused with its name.
      expect(() => parseCheckpoint(bytes.subarray(0, bytes.length - 3), 'contract.ckpt')).toThrow(
        /contract\.ckpt/,
      );
    });

    it('refuses ids outside the model', () => {
      const model = options.create();
      const bad = [Int32Array.of(model.numUsers), Int32Array.of(-1)];
      for (const users of bad) {
        expect(() => model.score(users, Int32Array.of(0))).toThrow(/outside/);
        expect(() => model.scoreAll(users)).toThrow(/outside/);
      }
      expect(() => model.score(Int32Array.of(0), Int32Array.of(model.numItems))).toThrow(/outside/);
      let error: unknown;
      try {
        model.pairScores(Int32Array.of(0), Int32Array.of(model.numItems), 1);
      } catch (e) {
        error = e;
      }
      expect(DataError.isInstance(error) || error instanceof RangeError).toBe(true);
    });
  });
}

export { describeSequentialModelContract } from './sequential-contract.js';
export type { SequentialModelContractOptions } from './sequential-contract.js';
export { describeSequenceKernelContract } from './sequence-kernel-contract.js';
export type { SequenceKernelContractOptions } from './sequence-kernel-contract.js';
