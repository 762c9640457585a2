import { ConfigError, Random, SequenceBatchSampler } from '@advrec/data';
import type { SequenceSplit } from '@advrec/data';
import { perturbSteps } from '@advrec/adversary';
import type { Adversary } from '@advrec/adversary';
import { SEQUENCE_ITEM_TABLE, SparseRows, tfjsPassGradients } from '@advrec/models';
import type {
  PerturbableSurface,
  SequenceGradientKernel,
  SequentialModel,
  Tfjs,
} from '@advrec/models';
import { passOf, scatterRows } from './sequence-pass.js';

/**
 * A sequential model's item-embedding surface under a registered {@link Adversary} (FGM,
 * FGSM, random noise, a plugin's): ATSRec's perturbation in training, and the attack of a
 * trained model. The same adversaries, through the same {@link perturbSteps}, as the
 * pairwise models' APR and AMR.
 */

/** The model's item-embedding surface. @throws ConfigError when the model declares none. */
export function itemSurfaceOf(model: SequentialModel): PerturbableSurface {
  const surface = model.surfaces.find((s) => s.name === SEQUENCE_ITEM_TABLE);
  if (!surface)
    throw new ConfigError([
      {
        path: 'model.surfaces',
        message: `the sequential model has no "${SEQUENCE_ITEM_TABLE}" surface to perturb; it has ${model.surfaces.map((s) => s.name).join(', ') || 'none'}`,
      },
    ]);
  return surface;
}

/** The rows `rows` of a dense `numItems x dimension` gradient as {@link SparseRows}. */
export function sparseRowsOf(dense: Float32Array, rows: Int32Array, dimension: number): SparseRows {
  const out = new SparseRows(dimension, rows.length);
  for (const row of rows) out.ensure(row);
  const values = out.values;
  rows.forEach((row, r) => {
    const from = row * dimension;
    for (let c = 0; c < dimension; c++) values[r * dimension + c] = dense[from + c]!;
  });
  return out;
}

/** Writes a perturbation's rows into a dense `numItems x dimension` array. */
export function writeRows(rows: SparseRows, out: Float32Array): void {
  const d = rows.dimension;
  const values = rows.values;
  rows.rows.forEach((row, r) => {
    for (let c = 0; c < d; c++) out[row * d + c] = values[r * d + c]!;
  });
}

/** Options of {@link craftSequencePerturbation}. */
export interface SequencePerturbationOptions {
  /** The adversary (`getAdversary('fgm')`, a plugin's). */
  readonly adversary: Adversary;
  /** Norm bound per item row (absolute). */
  readonly epsilon: number;
  /** Seed of the batches and of random adversaries (default 0). */
  readonly seed?: number;
  /** Sequences per gradient pass (default 128; changes the result only by rounding). */
  readonly batchSize?: number;
  /** The kernel the gradients come from (default tfjs autodiff of the encoder). */
  readonly kernel?: SequenceGradientKernel;
}

/**
 * The perturbation of a trained sequential model's item embeddings (APR section 2.3 on the
 * item-embedding layer, as ATSRec): the gradient of the next-item training loss over one
 * pass of the training sequences (no dropout), summed per item row, given to the adversary
 * (FGM: `epsilon * g_i / ||g_i||`; a multi-step adversary gets the gradient at its previous
 * step). Random noise perturbs every item row. Returns the `numItems x dimension` perturbation.
 */
export async function craftSequencePerturbation(
  tf: Tfjs,
  model: SequentialModel,
  split: SequenceSplit,
  options: SequencePerturbationOptions,
): Promise<Float32Array> {
  const { adversary, epsilon } = options;
  if (!(Number.isFinite(epsilon) && epsilon >= 0))
    throw new ConfigError([
      { path: 'epsilon', message: `must be a finite number >= 0, got ${epsilon}` },
    ]);
  const surface = itemSurfaceOf(model);
  const seed = options.seed ?? 0;
  const sampler = new SequenceBatchSampler(split, {
    batchSize: options.batchSize ?? 128,
    maxLength: model.maxLength,
    seed,
  });
  const d = model.dimension;
  const batches = sampler.epoch(0);
  const gradientAt = async (
    perturbation: Float32Array | undefined,
  ): Promise<{ gradient: Float32Array; touched: Int32Array }> => {
    const gradient = new Float32Array(model.numItems * d);
    const touched = new Set<number>();
    for (const batch of batches) {
      const pass = passOf(model, batch, false, 0, perturbation);
      const g = options.kernel
        ? await options.kernel.lossAndGradients(pass)
        : tfjsPassGradients(tf, model, pass);
      for (const id of scatterRows(d, batch, g, gradient)) touched.add(id);
    }
    return { gradient, touched: Int32Array.from([...touched].sort((a, b) => a - b)) };
  };
  const first = adversary.usesGradient
    ? await gradientAt(undefined)
    : {
        gradient: new Float32Array(model.numItems * d),
        touched: Int32Array.from({ length: model.numItems }, (_, i) => i),
      };
  const rows = first.touched;
  const random = Random.stream(seed, 0x7a9d);
  const result = await perturbSteps(
    adversary,
    epsilon,
    [surface],
    random,
    new Map([[surface.name, sparseRowsOf(first.gradient, rows, d)]]),
    async (previous) => {
      const dense = new Float32Array(model.numItems * d);
      writeRows(previous.get(surface.name)!, dense);
      const next = await gradientAt(dense);
      return new Map([[surface.name, sparseRowsOf(next.gradient, rows, d)]]);
    },
  );
  const out = new Float32Array(model.numItems * d);
  writeRows(result.get(surface.name)!, out);
  return out;
}
