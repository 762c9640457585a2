import { Random } from '@advrec/data';
import type { TripleSampler } from '@advrec/data';
import { perturbSteps } from '@advrec/adversary';
import type { Adversary } from '@advrec/adversary';
import { bprBatch } from '@advrec/losses';
import { forwardPairs } from '@advrec/models';
import type {
  Model,
  ParameterTable,
  PerturbableSurface,
  SparseRows,
  SparseRowsByName,
} from '@advrec/models';
import { EpochTotals } from './engine.js';
import type { Engine, EngineInfo, EpochStats } from './engine.js';
import { applySparseUpdate } from './optimizer.js';
import type { OptimizerState, ResolvedOptimizerConfig } from './optimizer.js';

/** Options of {@link GenericEngine}. */
export interface GenericEngineOptions {
  readonly optimizer: ResolvedOptimizerConfig;
  readonly states: readonly OptimizerState[];
  readonly l2: number;
  /** Per-table learning rate and L2 over `optimizer.learningRate` and `l2`. */
  readonly tables?: Readonly<
    Record<
      string,
      { readonly learningRate: number; readonly l2: number; readonly keepNorm?: boolean }
    >
  >;
  readonly epsilon: number;
  readonly adversarialWeight: number;
  readonly adversary: Adversary;
  /** Surfaces the adversary perturbs. */
  readonly surfaces: readonly string[];
  readonly seed: number;
}

/**
 * Trains any model through its contract: the model's batch step (`forwardPairs`, contract
 * v2; VBPR runs its feature products as GEMMs there) or `pairScores` / `pairBackward` (v1
 * models, tfjs-defined plugins), with any registered adversary and the same row-sparse
 * optimisers as the fused kernel. One thread; deterministic.
 *
 * Per batch (APR Algorithm 1 in mini-batch form, section 3.3.1; AMR Algorithm 1 for the
 * feature surface): the BPR batch as pairs `[users; users] x [positives; negatives]`;
 * clean scores and the BPR gradient w.r.t. the scores; the clean gradient of every touched
 * row (Gamma on the surfaces); the adversary's perturbation from Gamma; the perturbed
 * scores and the adversarial term weighted by lambda; L2 on the batch's rows; one sparse
 * update.
 */
export class GenericEngine implements Engine {
  private readonly model: Model;
  private readonly sampler: TripleSampler;
  private readonly options: GenericEngineOptions;
  private readonly tables: Map<string, ParameterTable>;
  private readonly stateOf: Map<string, OptimizerState>;
  private readonly surfaces: readonly PerturbableSurface[];
  /** Each trainable table's optimiser config and L2 (per-table overrides applied). */
  private readonly updateOf: Map<
    string,
    { optimizer: ResolvedOptimizerConfig; l2: number; norm: number | null }
  >;
  readonly info: EngineInfo;
  step: number;

  constructor(model: Model, sampler: TripleSampler, options: GenericEngineOptions, step = 0) {
    this.model = model;
    this.sampler = sampler;
    this.options = options;
    this.step = step;
    this.tables = new Map(model.tables.map((t) => [t.name, t]));
    this.stateOf = new Map(options.states.map((s) => [s.table, s]));
    this.surfaces = options.surfaces.map((name) => model.surfaces.find((s) => s.name === name)!);
    this.updateOf = new Map(
      model.trainableTables.map((name) => {
        const own = options.tables?.[name];
        return [
          name,
          own
            ? {
                optimizer: { ...options.optimizer, learningRate: own.learningRate },
                l2: own.l2,
                norm: own.keepNorm ? frobeniusNorm(this.tables.get(name)!.values) : null,
              }
            : { optimizer: options.optimizer, l2: options.l2, norm: null },
        ];
      }),
    );
    const batchStep = model.forwardPairs !== undefined;
    this.info = {
      name: 'generic',
      description: `generic (Model contract${batchStep ? ", the model's batch step" : ', pairScores/pairBackward'}), 1 thread, ${options.optimizer.name}`,
      threads: 1,
      details: {
        batchStep,
        optimizer: options.optimizer.name,
        adversary: options.adversary.adversaryName,
        surfaces: [...options.surfaces],
      },
    };
  }

  async trainEpoch(epoch: number, adversarial: boolean): Promise<EpochStats> {
    const { model, sampler, options } = this;
    const totals = new EpochTotals(adversarial);
    const buffers = sampler.allocate();
    const n = sampler.batchSize;
    const users = new Int32Array(2 * n);
    const items = new Int32Array(2 * n);
    const dScores = new Float64Array(2 * n);
    // Gamma is needed on the surfaces only when an adversary uses it.
    const wanted = adversarial && options.adversary.usesGradient ? options.surfaces : [];
    for (let b = 0; b < sampler.batchesPerEpoch; b++) {
      const batch = sampler.batch(epoch, b, buffers);
      const size = batch.size;
      users.set(batch.users.subarray(0, size));
      users.set(batch.users.subarray(0, size), size);
      items.set(batch.positives.subarray(0, size));
      items.set(batch.negatives.subarray(0, size), size);
      const gradients: SparseRowsByName = new Map();
      const pass = async (
        perturbations: SparseRowsByName | undefined,
        weight: number,
        into: SparseRowsByName,
        surfaceGradients: readonly string[],
      ): Promise<{ loss: number; correct: number }> => {
        const forward = await forwardPairs(model, users, items, 2 * size, perturbations, {
          training: true,
        });
        const d = dScores.subarray(0, 2 * size);
        const result = bprBatch(
          forward.scores.subarray(0, size),
          forward.scores.subarray(size, 2 * size),
          size,
          d.subarray(0, size),
          d.subarray(size),
          weight,
        );
        await forward.backward(d, into, surfaceGradients);
        return result;
      };
      const clean = await pass(undefined, 1, gradients, wanted);
      let adversarialLoss = 0;
      let adversarialCorrect = 0;
      if (adversarial) {
        const random = Random.stream(options.seed, 0xad, epoch, b);
        // Multi-step adversaries (PGD): the batch's gradient at the perturbed point.
        const gradientAt = async (current: SparseRowsByName): Promise<SparseRowsByName> => {
          const next: SparseRowsByName = new Map();
          await pass(current, 1, next, options.surfaces);
          return next;
        };
        const perturbations = await perturbSteps(
          options.adversary,
          options.epsilon,
          this.surfaces,
          random,
          gradients,
          gradientAt,
        );
        const adv = await pass(perturbations, options.adversarialWeight, gradients, []);
        adversarialLoss = adv.loss;
        adversarialCorrect = adv.correct;
      }
      totals.add({
        loss: clean.loss,
        correct: clean.correct,
        adversarialLoss,
        adversarialCorrect,
        triples: size,
      });
      this.step++;
      for (const name of model.trainableTables) {
        const rows = gradients.get(name);
        const table = this.tables.get(name)!;
        if (!rows) continue;
        const { optimizer, l2, norm } = this.updateOf.get(name)!;
        if (l2 !== 0) addL2(rows, table, batch, size, l2);
        applySparseUpdate(optimizer, table, this.stateOf.get(name)!, rows, this.step);
        if (norm !== null) {
          const now = frobeniusNorm(table.values);
          if (now > 0) {
            const scale = norm / now;
            const v = table.values;
            for (let k = 0; k < v.length; k++) v[k] = v[k]! * scale;
          }
        }
      }
    }
    return totals.finish();
  }

  async close(): Promise<void> {}
}

/** The Frobenius norm of a table's values (float64 sum). */
function frobeniusNorm(values: Float32Array): number {
  let s = 0;
  for (let k = 0; k < values.length; k++) s += values[k]! * values[k]!;
  return Math.sqrt(s);
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
