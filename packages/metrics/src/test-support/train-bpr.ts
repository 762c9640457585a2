import { TripleSampler } from '@advrec/data';
import type { InteractionMatrix } from '@advrec/data';
import { bprBatch } from '@advrec/losses';
import type { Model, SparseRowsByName } from '@advrec/models';

/**
 * A plain mini-batch BPR loop with Adagrad through the Model contract, so the metrics
 * tests get a trained model without depending on the trainer (which depends on metrics).
 */
export function trainBpr(
  model: Model,
  train: InteractionMatrix,
  options: { epochs: number; seed: number; learningRate?: number },
): void {
  const lr = options.learningRate ?? 0.05;
  const sampler = new TripleSampler(train, { seed: options.seed, batchSize: 512 });
  const accumulators = new Map(
    model.trainableTables.map((name) => {
      const table = model.tables.find((t) => t.name === name)!;
      return [name, new Float64Array(table.values.length).fill(0.1)] as const;
    }),
  );
  for (let epoch = 0; epoch < options.epochs; epoch++)
    for (let b = 0; b < sampler.batchesPerEpoch; b++) {
      const batch = sampler.batch(epoch, b);
      const n = batch.size;
      const pos = model.pairScores(batch.users, batch.positives, n);
      const neg = model.pairScores(batch.users, batch.negatives, n);
      const dp = new Float64Array(n);
      const dn = new Float64Array(n);
      bprBatch(pos, neg, n, dp, dn);
      const gradients: SparseRowsByName = new Map();
      model.pairBackward(batch.users, batch.positives, n, dp, gradients);
      model.pairBackward(batch.users, batch.negatives, n, dn, gradients);
      for (const [name, acc] of accumulators) {
        const rows = gradients.get(name);
        if (!rows) continue;
        const table = model.tables.find((t) => t.name === name)!;
        const d = table.dimension;
        rows.rows.forEach((id, r) => {
          for (let f = 0; f < d; f++) {
            const g = rows.values[r * d + f]!;
            acc[id * d + f]! += g * g;
            table.values[id * d + f] =
              table.values[id * d + f]! - (lr * g) / Math.sqrt(acc[id * d + f]!);
          }
        });
      }
    }
}
