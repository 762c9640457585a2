import { ConfigError, Random, TripleSampler } from '@advrec/data';
import type { InteractionMatrix } from '@advrec/data';
import { bprBatch } from '@advrec/losses';
import { SparseRows, cloneTable, forwardPairs, restoreModel } from '@advrec/models';
import type { Model, SparseRowsByName } from '@advrec/models';
import { perturbSteps } from './adversary.js';
import type { Adversary } from './adversary.js';

/** Options of {@link craftPerturbation}. */
export interface CraftPerturbationOptions {
  readonly adversary: Adversary;
  /** Norm bound per row. */
  readonly epsilon: number;
  /** Surfaces to perturb (default: every surface of the model). */
  readonly surfaces?: readonly string[];
  /** Seed of the sampled negatives and of random adversaries (default 0). */
  readonly seed?: number;
  /** Triples per forward/backward block (default 8192; does not change the result beyond rounding). */
  readonly blockSize?: number;
}

/** A perturbation of a trained model and the training pair accuracy it leaves. */
export interface CraftedPerturbation {
  /** Surface name -> perturbation rows. */
  readonly perturbations: SparseRowsByName;
  /** BPR pair accuracy on the triples before the perturbation (sampled training triples). */
  readonly cleanAccuracy: number;
  /** The same after it (APR Figure 1b/d). */
  readonly perturbedAccuracy: number;
  /** Triples crafted on (one per training interaction for {@link craftPerturbation}). */
  readonly triples: number;
}

/** Triples `(users[t], positives[t], negatives[t])` a perturbation is crafted on. */
export interface PerturbationTriples {
  readonly users: Int32Array;
  readonly positives: Int32Array;
  readonly negatives: Int32Array;
}

/**
 * The perturbation of APR section 2.3: `Delta = argmax_{||Delta|| <= eps} L_BPR(D' | Theta + Delta)`
 * approximated by the adversary (FGM: `eps * Gamma / ||Gamma||` per row, Eq. 3), where
 * `D'` pairs every training interaction with one sampled negative and `Gamma` is the
 * gradient of the BPR loss over all of `D'` w.r.t. each row of the surfaces.
 */
export async function craftPerturbation(
  model: Model,
  train: InteractionMatrix,
  options: CraftPerturbationOptions,
): Promise<CraftedPerturbation> {
  const sampler = new TripleSampler(train, {
    seed: options.seed ?? 0,
    batchSize: options.blockSize ?? 8192,
  });
  const users = new Int32Array(train.nnz);
  const positives = new Int32Array(train.nnz);
  const negatives = new Int32Array(train.nnz);
  let at = 0;
  for (let b = 0; b < sampler.batchesPerEpoch; b++) {
    const batch = sampler.batch(0, b);
    users.set(batch.users.subarray(0, batch.size), at);
    positives.set(batch.positives.subarray(0, batch.size), at);
    negatives.set(batch.negatives.subarray(0, batch.size), at);
    at += batch.size;
  }
  return craftPerturbationOn(model, { users, positives, negatives }, options);
}

/**
 * The perturbation that the adversary finds against the BPR loss of the given triples: the
 * papers' attack on training triples ({@link craftPerturbation}), or an attack on what is
 * evaluated (held-out items against their strongest competitors, the metrics package's
 * evaluation-side attack). Accuracies are over these triples.
 */
export async function craftPerturbationOn(
  model: Model,
  triples: PerturbationTriples,
  options: CraftPerturbationOptions,
): Promise<CraftedPerturbation> {
  const seed = options.seed ?? 0;
  const issues: { path: string; message: string }[] = [];
  if (!Number.isFinite(options.epsilon) || options.epsilon < 0)
    issues.push({
      path: 'epsilon',
      message: `must be a finite non-negative number, got ${options.epsilon}`,
    });
  const count = triples.users.length;
  if (triples.positives.length !== count || triples.negatives.length !== count)
    issues.push({
      path: 'triples',
      message: `users, positives and negatives differ in length (${count}, ${triples.positives.length}, ${triples.negatives.length})`,
    });
  const surfaceNames = options.surfaces ?? model.surfaces.map((s) => s.name);
  const surfaces = surfaceNames.map((name) => {
    const surface = model.surfaces.find((s) => s.name === name);
    if (!surface)
      issues.push({
        path: 'surfaces',
        message: `model ${model.modelName} has no surface "${name}"; it has ${model.surfaces.map((s) => s.name).join(', ') || 'none'}`,
      });
    return surface;
  });
  if (issues.length > 0) throw new ConfigError(issues);
  const blockSize = options.blockSize ?? 8192;
  const gradients: SparseRowsByName = new Map();
  for (const s of surfaces) gradients.set(s!.name, new SparseRows(s!.dimension, 1024));
  const wanted = surfaces.map((s) => s!.name);
  // Each block as one batch of pairs `[users; users] x [positives; negatives]` through the
  // model's batch step (VBPR: dense products on onnxruntime).
  const blocks: { users: Int32Array; items: Int32Array; size: number }[] = [];
  for (let start = 0; start < count; start += blockSize) {
    const n = Math.min(blockSize, count - start);
    const users = new Int32Array(2 * n);
    const items = new Int32Array(2 * n);
    users.set(triples.users.subarray(start, start + n));
    users.set(triples.users.subarray(start, start + n), n);
    items.set(triples.positives.subarray(start, start + n));
    items.set(triples.negatives.subarray(start, start + n), n);
    blocks.push({ users, items, size: n });
  }
  /** Pair accuracy over every block at `perturbations`, adding the BPR gradient when asked. */
  const pass = async (
    perturbations: SparseRowsByName | undefined,
    into: SparseRowsByName | null,
  ): Promise<number> => {
    let correct = 0;
    for (const { users, items, size } of blocks) {
      const forward = await forwardPairs(model, users, items, 2 * size, perturbations);
      const d = new Float64Array(2 * size);
      correct += bprBatch(
        forward.scores.subarray(0, size),
        forward.scores.subarray(size),
        size,
        d.subarray(0, size),
        d.subarray(size),
      ).correct;
      if (into) await forward.backward(d, into, wanted);
    }
    return correct;
  };
  const correct = await pass(undefined, options.adversary.usesGradient ? gradients : null);
  const random = Random.stream(seed, 0x5eed);
  const initial: SparseRowsByName = new Map();
  for (const s of surfaces) {
    const surface = s!;
    let rows = gradients.get(surface.name)!;
    if (!options.adversary.usesGradient) {
      // Random noise touches every row of the surface.
      rows = new SparseRows(surface.dimension, surface.rows);
      for (let r = 0; r < surface.rows; r++) rows.ensure(r);
    }
    initial.set(surface.name, rows);
  }
  // Multi-step adversaries (PGD): the gradient over the same triples at the perturbed point.
  const gradientAt = async (current: SparseRowsByName): Promise<SparseRowsByName> => {
    const next: SparseRowsByName = new Map();
    for (const s of surfaces) next.set(s!.name, new SparseRows(s!.dimension, 1024));
    await pass(current, next);
    return next;
  };
  const perturbations = await perturbSteps(
    options.adversary,
    options.epsilon,
    surfaces.map((s) => s!),
    random,
    initial,
    gradientAt,
  );
  const perturbedCorrect = await pass(perturbations, null);
  return {
    perturbations,
    cleanAccuracy: count > 0 ? correct / count : Number.NaN,
    perturbedAccuracy: count > 0 ? perturbedCorrect / count : Number.NaN,
    triples: count,
  };
}

/**
 * A copy of `model` with the perturbations added to its tables (surface name = table
 * name for embedding surfaces), rebuilt through the model registry. The original is
 * untouched.
 */
export function perturbedCopy(model: Model, perturbations: SparseRowsByName): Model {
  const tables = model.tables.map((t) => {
    const copy = cloneTable(t);
    const delta = perturbations.get(t.name);
    if (delta) {
      if (delta.dimension !== t.dimension)
        throw new ConfigError([
          {
            path: `perturbations.${t.name}`,
            message: `dimension ${delta.dimension} does not match the table's ${t.dimension}`,
          },
        ]);
      const d = t.dimension;
      const rows = delta.rows;
      const v = delta.values;
      for (let r = 0; r < rows.length; r++) {
        const base = rows[r]! * d;
        for (let f = 0; f < d; f++) copy.values[base + f] = copy.values[base + f]! + v[r * d + f]!;
      }
    }
    return copy;
  });
  for (const name of perturbations.keys())
    if (!model.tables.some((t) => t.name === name))
      throw new ConfigError([
        {
          path: 'perturbations',
          message: `surface "${name}" is not a table of ${model.modelName}; perturbedCopy handles embedding surfaces`,
        },
      ]);
  return restoreModel({
    modelName: model.modelName,
    specificationVersion: model.specificationVersion,
    config: model.config,
    numUsers: model.numUsers,
    numItems: model.numItems,
    tables,
  });
}
