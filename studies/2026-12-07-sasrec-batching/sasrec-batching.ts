/**
 * The SASRec batching study (issue 31): SASRec on Amazon Games reached validation HR@10 /
 * NDCG@10 0.750 / 0.538 but test 0.722 / 0.510, against the paper's test 0.7410 / 0.5360.
 * advrec groups each epoch's sequences by length (windows of 50 batches sorted by length,
 * each batch cut to its longest row), where the paper's code draws each batch's users at
 * random and pads to 50. Same loss per batch, but which positions share a batch (and so a
 * step's average) differs. This trains the same model, seed and epochs both ways:
 *
 * - `bucketed`: grouped by length, each batch's loss the mean over its own positions (advrec's
 *   default until this study: `bucketByLength: true`, `positionWeighting: 'batch'`);
 * - `mixed`: random batches padded to the maximum length, each batch's loss the mean over its
 *   positions, as the paper's code (`bucketByLength: false`);
 * - `weighted`: grouped by length, each batch's loss the sum over its positions divided by
 *   the epoch's mean positions per batch, so every position weighs the same in every batch
 *   (`bucketByLength: true`, `positionWeighting: 'epoch'`).
 *
 * Validation (100 sampled negatives) every SASREC_VALIDATE epochs, the best epoch kept, then
 * test under the same protocol. Run: `pnpm bench --study studies/2026-12-07-sasrec-batching`
 * (SASREC_EPOCHS, default 60; SASREC_ARMS, default "bucketed,mixed,weighted"; SASREC_VALIDATE, default 10; SASREC_SEEDS, default 1).
 */
import { join } from 'node:path';
import { leaveLastOut, readDelimited, sequencesFromLog } from '@advrec/data';
import { SASRec } from '@advrec/sasrec';
import {
  evaluateSequentialArm,
  loadTfjs,
  sequenceCandidates,
  trainSequentialModel,
} from '@advrec/trainer';
import type { BenchContext } from '../../bench/src/context.js';

const SEED = 2024;

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const epochs = Number(process.env['SASREC_EPOCHS'] ?? 60);
  const validateEvery = Number(process.env['SASREC_VALIDATE'] ?? 10);
  const arms = (process.env['SASREC_ARMS'] ?? 'bucketed,mixed,weighted').split(',');
  const seeds = Number(process.env['SASREC_SEEDS'] ?? 1);
  const { tf, backend } = await loadTfjs();
  const file = join(sharedData, 'amazon-games-sasrec', 'Video.txt');
  const split = leaveLastOut(
    sequencesFromLog(await readDelimited(file, { delimiter: 'whitespace', header: false })),
  );
  const validation = sequenceCandidates(split, 'validation', { seed: SEED + 1 });
  const test = sequenceCandidates(split, 'test', { seed: SEED + 2 });
  const results: Record<string, unknown>[] = [];
  for (let s = 0; s < seeds; s++)
    for (const arm of arms) {
      const seed = SEED + s;
      const model = new SASRec(split.numItems, { seed });
      const training = await trainSequentialModel(tf, model, split, {
        epochs,
        seed,
        validateEvery,
        validation,
        bucketByLength: arm !== 'mixed',
        positionWeighting: arm === 'weighted' ? 'epoch' : 'batch',
        onEpoch: (e) =>
          log(
            `${arm} seed ${seed} epoch ${e.epoch + 1}: loss ${e.loss.toFixed(4)}, ${e.seconds.toFixed(1)} s${e.validation ? `, valid HR ${e.validation.hitRate.toFixed(4)} NDCG ${e.validation.ndcg.toFixed(4)}` : ''}`,
          ),
      });
      const evaluated = await evaluateSequentialArm(
        tf,
        model,
        split,
        { kind: 'base', training },
        { validation, test, attackEpsilons: [], seed },
      );
      const record = {
        arm,
        seed,
        epochs,
        bestEpoch: training.bestEpoch + 1,
        medianEpochSeconds: [...training.epochs.map((e) => e.seconds)].sort((a, b) => a - b)[
          Math.floor(training.epochs.length / 2)
        ],
        validation: training.epochs
          .filter((e) => e.validation)
          .map((e) => ({ epoch: e.epoch + 1, ...e.validation })),
        test: { hitRate10: evaluated.test.hitRate, ndcg10: evaluated.test.ndcg },
      };
      log(`${arm} seed ${seed}: test ${JSON.stringify(record.test)}`);
      results.push(record);
    }
  return { backend, dataset: split.source, arms: results };
}
