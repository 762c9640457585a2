import { Random } from '@advrec/data';
import type { TripleSampler } from '@advrec/data';
import { perturbSteps } from '@advrec/adversary';
import type { Adversary } from '@advrec/adversary';
import { bprBatch } from '@advrec/losses';
import type { SparseRows } from '@advrec/models';
import type { Model, ParameterTable, SparseRowsByName } from '@advrec/models';
import type { EpochStats } from './mf-engine.js';
import { applySparseUpdate } from './optimizer.js';
import type { OptimizerState, ResolvedOptimizerConfig } from './optimizer.js';

/** Options of {@link GenericEngine}. */
export interface GenericEngineOptions {
  readonly optimizer: ResolvedOptimizerConfig;
  readonly states: readonly OptimizerState[];
  readonly l2: number;
  readonly epsilon: number;
  readonly adversarialWeight: number;
  readonly adversary: Adversary;
  /** Surfaces the adversary perturbs. */
  readonly surfaces: readonly string[];
  readonly seed: number;
}

/**
 * Trains any model through its contract (`pairScores` / `pairBackward`, which tfjs-defined
 * plugin models implement with tfjs autodiff), with any registered adversary and the same
 * row-sparse optimisers as the fused kernels. One thread; deterministic.
 *
 * Per batch (APR Algorithm 1 in mini-batch form, section 3.3.1): clean scores and the BPR
 * gradient w.r.t. the scores; the clean gradient of every touched row (Gamma on the
 * surfaces); the adversary's perturbation from Gamma; the perturbed scores and the
 * adversarial term weighted by lambda; L2 on the batch's rows; one sparse update.
 */
export class GenericEngine {
  private readonly model: Model;
  private readonly sampler: TripleSampler;
  private readonly options: GenericEngineOptions;
  private readonly tables: Map<string, ParameterTable>;
  private readonly stateOf: Map<string, OptimizerState>;
  step: number;

  constructor(model: Model, sampler: TripleSampler, options: GenericEngineOptions, step = 0) {
    this.model = model;
    this.sampler = sampler;
    this.options = options;
    this.step = step;
    this.tables = new Map(model.tables.map((t) => [t.name, t]));
    this.stateOf = new Map(options.states.map((s) => [s.table, s]));
  }

  trainEpoch(epoch: number, adversarial: boolean): EpochStats {
    const started = performance.now();
    const { model, sampler, options } = this;
    const buffers = sampler.allocate();
    const n = sampler.batchSize;
    const dp = new Float64Array(n);
    const dn = new Float64Array(n);
    const surfaces = options.surfaces.map((name) => model.surfaces.find((s) => s.name === name)!);
    let loss = 0;
    let adversarialLoss = 0;
    let correct = 0;
    let adversarialCorrect = 0;
    let triples = 0;
    for (let b = 0; b < sampler.batchesPerEpoch; b++) {
      const batch = sampler.batch(epoch, b, buffers);
      const size = batch.size;
      const gradients: SparseRowsByName = new Map();
      const pos = model.pairScores(batch.users, batch.positives, size);
      const neg = model.pairScores(batch.users, batch.negatives, size);
      const clean = bprBatch(pos, neg, size, dp, dn);
      loss += clean.loss;
      correct += clean.correct;
      triples += size;
      model.pairBackward(batch.users, batch.positives, size, dp, gradients);
      model.pairBackward(batch.users, batch.negatives, size, dn, gradients);
      if (adversarial) {
        const random = Random.stream(options.seed, 0xad, epoch, b);
        // Multi-step adversaries (PGD): the batch's gradient at the perturbed point.
        const gradientAt = (current: SparseRowsByName): SparseRowsByName => {
          const next: SparseRowsByName = new Map();
          const qp = model.pairScores(batch.users, batch.positives, size, current);
          const qn = model.pairScores(batch.users, batch.negatives, size, current);
          const gp = new Float64Array(size);
          const gn = new Float64Array(size);
          bprBatch(qp, qn, size, gp, gn);
          model.pairBackward(batch.users, batch.positives, size, gp, next, current);
          model.pairBackward(batch.users, batch.negatives, size, gn, next, current);
          return next;
        };
        const perturbations = perturbSteps(
          options.adversary,
          options.epsilon,
          surfaces,
          random,
          gradients,
          gradientAt,
        );
        const pp = model.pairScores(batch.users, batch.positives, size, perturbations);
        const pn = model.pairScores(batch.users, batch.negatives, size, perturbations);
        const adv = bprBatch(pp, pn, size, dp, dn, options.adversarialWeight);
        adversarialLoss += adv.loss;
        adversarialCorrect += adv.correct;
        model.pairBackward(batch.users, batch.positives, size, dp, gradients, perturbations);
        model.pairBackward(batch.users, batch.negatives, size, dn, gradients, perturbations);
      }
      this.step++;
      for (const name of model.trainableTables) {
        const rows = gradients.get(name);
        const table = this.tables.get(name)!;
        if (!rows) continue;
        if (options.l2 !== 0) addL2(rows, table, batch, size, options.l2);
        applySparseUpdate(options.optimizer, table, this.stateOf.get(name)!, rows, this.step);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      loss,
      adversarialLoss,
      trainAccuracy: triples > 0 ? correct / triples : 0,
      adversarialAccuracy: adversarial && triples > 0 ? adversarialCorrect / triples : Number.NaN,
      triples,
      seconds,
      triplesPerSecond: triples / seconds,
    };
  }

  async close(): Promise<void> {}
}

/** Adds `2 * l2 * occurrences * theta` to each touched row (L2 on the batch's gathered rows). */
function addL2(
  rows: SparseRows,
  table: ParameterTable,
  batch: { users: Int32Array; positives: Int32Array; negatives: Int32Array },
  size: number,
  l2: number,
): void {
  const counts = new Map<number, number>();
  const count = (id: number): void => {
    counts.set(id, (counts.get(id) ?? 0) + 1);
  };
  if (table.side === 'dense') {
    // A dense table (e.g. the feature projection E) is regularised once per batch.
    for (let r = 0; r < table.rows; r++) count(r);
  } else
    for (let t = 0; t < size; t++) {
      if (table.side === 'user') count(batch.users[t]!);
      else {
        count(batch.positives[t]!);
        count(batch.negatives[t]!);
      }
    }
  const d = table.dimension;
  const ids = rows.rows;
  const v = rows.values;
  for (let r = 0; r < ids.length; r++) {
    const c = counts.get(ids[r]!) ?? 0;
    const base = ids[r]! * d;
    for (let f = 0; f < d; f++) v[r * d + f]! += 2 * l2 * c * table.values[base + f]!;
  }
}
