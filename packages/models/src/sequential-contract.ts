import type * as tfc from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { ConfigError, Random } from '@advrec/data';
import { parseCheckpoint, serializeCheckpoint } from './checkpoint.js';
import type { Tfjs } from './model.js';
import { SEQUENCE_ITEM_TABLE, getSequentialModelFactory } from './sequential.js';
import type { SequentialModel } from './sequential.js';

/** Options of {@link describeSequentialModelContract}. */
export interface SequentialModelContractOptions {
  /** Name shown in the test report. */
  readonly name: string;
  /** A fresh model with non-trivial parameters (registered, so it can be restored). */
  readonly create: () => SequentialModel;
  /** tfjs with gradients registered (e.g. `@tensorflow/tfjs`). */
  readonly tf: Tfjs;
  /** Max abs difference allowed (default 1e-5). */
  readonly tolerance?: number;
}

interface Encoded {
  hidden: Float32Array;
  /** Gradients of `sum(hidden * weights)` w.r.t. the item rows (`size x length x d`) and every dense table. */
  itemRows: Float32Array;
  dense: Map<string, Float32Array>;
}

/**
 * Runs the encoder on left-padded rows (`-1` = padding) in eval mode and differentiates
 * `sum_t weights_t . hidden_t` over the real positions.
 */
function encode(
  tf: Tfjs,
  model: SequentialModel,
  inputs: Int32Array,
  size: number,
  length: number,
  weights: Float32Array,
): Encoded {
  const d = model.dimension;
  const items = model.tables.find((t) => t.name === SEQUENCE_ITEM_TABLE)!;
  const rows = new Float32Array(size * length * d);
  inputs.forEach((id, k) => {
    if (id >= 0) rows.set(items.values.subarray(id * d, (id + 1) * d), k * d);
  });
  const denseTables = model.tables.filter((t) => t.side === 'dense');
  let out: Encoded | null = null;
  tf.tidy(() => {
    const mask = tf.tensor3d(
      Float32Array.from(inputs, (i) => (i >= 0 ? 1 : 0)),
      [size, length, 1],
    );
    const w = tf.tensor3d(weights, [size, length, d]);
    const forward = (...args: tfc.Tensor[]): tfc.Tensor3D => {
      const dense: Record<string, tfc.Tensor2D> = {};
      denseTables.forEach((t, k) => (dense[t.name] = args[1 + k] as tfc.Tensor2D));
      return model.encode(tf, {
        size,
        length,
        positionOffset: model.maxLength - length,
        itemRows: args[0] as tfc.Tensor3D,
        mask,
        dense,
        training: false,
        dropout: (x) => x,
      });
    };
    const f = (...args: tfc.Tensor[]): tfc.Scalar =>
      tf.sum(tf.mul(tf.mul(forward(...args), w), mask));
    const xs = [
      tf.tensor3d(rows, [size, length, d]),
      ...denseTables.map((t) => tf.tensor2d(t.values, [t.rows, t.dimension])),
    ];
    const { grads } = tf.valueAndGrads(f)(xs);
    out = {
      hidden: forward(...xs).dataSync() as Float32Array,
      itemRows: grads[0]!.dataSync() as Float32Array,
      dense: new Map(denseTables.map((t, k) => [t.name, grads[1 + k]!.dataSync() as Float32Array])),
    };
  });
  return out!;
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let k = 0; k < a.length; k++) max = Math.max(max, Math.abs(a[k]! - b[k]!));
  return max;
}

/**
 * Registers the sequential Model contract tests for one model with vitest: a batch cut to
 * its longest row (the trainer's fast path) gives the same hidden states and gradients as
 * the same sequences padded to `maxLength` (the reference layout of the papers' code); the
 * encoder is causal; a checkpoint round trip through the registry restores the same
 * outputs; bad configs and mismatched tables are refused with the field named.
 */
export function describeSequentialModelContract(options: SequentialModelContractOptions): void {
  const tolerance = options.tolerance ?? 1e-5;
  const { tf } = options;
  describe(`${options.name} satisfies the sequential Model contract`, () => {
    const rowsOf = (model: SequentialModel, lengths: readonly number[], seed: number) => {
      const random = new Random(seed);
      return lengths.map((n) =>
        Int32Array.from({ length: n }, () => random.nextInt(model.numItems)),
      );
    };
    const layout = (sequences: readonly Int32Array[], length: number): Int32Array => {
      const out = new Int32Array(sequences.length * length).fill(-1);
      sequences.forEach((s, b) => out.set(s, b * length + length - s.length));
      return out;
    };
    const weightsFor = (
      sequences: readonly Int32Array[],
      length: number,
      d: number,
      seed: number,
    ): Float32Array => {
      // The same weight for a sequence's k-th real position in both layouts.
      const random = new Random(seed);
      const out = new Float32Array(sequences.length * length * d);
      sequences.forEach((s, b) => {
        for (let k = 0; k < s.length; k++)
          for (let c = 0; c < d; c++)
            out[(b * length + length - s.length + k) * d + c] = random.nextGaussian();
      });
      return out;
    };

    it('a batch cut to its longest row equals the same rows padded to maxLength (outputs and gradients)', () => {
      const model = options.create();
      const d = model.dimension;
      const L = model.maxLength;
      const short = Math.max(1, Math.min(L - 1, 3));
      const sequences = rowsOf(model, [short, 1, Math.max(1, short - 1)], 7);
      const cut = encode(
        tf,
        model,
        layout(sequences, short),
        sequences.length,
        short,
        weightsFor(sequences, short, d, 3),
      );
      const full = encode(
        tf,
        model,
        layout(sequences, L),
        sequences.length,
        L,
        weightsFor(sequences, L, d, 3),
      );
      sequences.forEach((s, b) => {
        for (let k = 0; k < s.length; k++) {
          const a = (b * short + short - s.length + k) * d;
          const f = (b * L + L - s.length + k) * d;
          expect(
            maxAbsDifference(cut.hidden.subarray(a, a + d), full.hidden.subarray(f, f + d)),
          ).toBeLessThan(tolerance);
          expect(
            maxAbsDifference(cut.itemRows.subarray(a, a + d), full.itemRows.subarray(f, f + d)),
          ).toBeLessThan(tolerance);
        }
      });
      for (const [name, g] of cut.dense)
        expect(maxAbsDifference(g, full.dense.get(name)!), name).toBeLessThan(tolerance);
      // And the gradients are not all zero: the check above compares something.
      expect(maxAbsDifference(cut.itemRows, new Float32Array(cut.itemRows.length))).toBeGreaterThan(
        0,
      );
    });

    it('is causal: a later item does not change earlier positions', () => {
      const model = options.create();
      const d = model.dimension;
      const L = Math.min(model.maxLength, 4);
      const [s] = rowsOf(model, [L], 11);
      const changed = Int32Array.from(s!);
      changed[L - 1] = (changed[L - 1]! + 1) % model.numItems;
      const zero = new Float32Array(L * d);
      const a = encode(tf, model, s!, 1, L, zero);
      const b = encode(tf, model, changed, 1, L, zero);
      expect(
        maxAbsDifference(a.hidden.subarray(0, (L - 1) * d), b.hidden.subarray(0, (L - 1) * d)),
      ).toBeLessThan(tolerance);
      if (model.numItems > 1 && L > 1)
        expect(
          maxAbsDifference(a.hidden.subarray((L - 1) * d), b.hidden.subarray((L - 1) * d)),
        ).toBeGreaterThan(0);
    });

    it('restores from a checkpoint through the registry with the same outputs', () => {
      const model = options.create();
      const bytes = Buffer.concat(serializeCheckpoint(model, [], { note: 'contract' }));
      const checkpoint = parseCheckpoint(bytes, 'contract.ckpt');
      const restored = getSequentialModelFactory(model.modelName).restore(checkpoint.model);
      const d = model.dimension;
      const sequences = rowsOf(model, [2, 3], 5);
      const zero = new Float32Array(2 * 3 * d);
      expect(Array.from(encode(tf, restored, layout(sequences, 3), 2, 3, zero).hidden)).toEqual(
        Array.from(encode(tf, model, layout(sequences, 3), 2, 3, zero).hidden),
      );
    });

    it('refuses a checkpoint whose tables do not fit the config, naming the table', () => {
      const model = options.create();
      const factory = getSequentialModelFactory(model.modelName);
      const tables = model.tables.map((t) =>
        t.name === SEQUENCE_ITEM_TABLE
          ? { ...t, rows: t.rows - 1, values: t.values.subarray(t.dimension) }
          : t,
      );
      expect(() =>
        factory.restore({ config: model.config, numItems: model.numItems, tables }),
      ).toThrow(/itemEmbeddings/);
      expect(() =>
        factory.create({ numItems: model.numItems, seed: 0 }, { ...model.config, noSuchOption: 1 }),
      ).toThrow(ConfigError);
      expect(() => factory.create({ numItems: 0, seed: 0 }, {})).toThrow(/numItems/);
    });
  });
}
