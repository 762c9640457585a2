/**
 * The deep models' training speed for `pnpm bench train`: NeuMF on MovieLens-1M (the generic
 * engine, BPR and APR, 2 threads) and SASRec, SASRec + ATSRec and GRU4Rec on Amazon Games
 * (tfjs on its wasm backend, one thread; batches of 128 sequences cut to their longest row).
 * One warm-up epoch, then `epochs` timed epochs each; medians.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leaveLastOut, readDelimited, sequencesFromLog } from '@advrec/data';
import type { SequentialModel } from '@advrec/models';
import { GRU4Rec } from '@advrec/gru4rec';
import { NeuralMatrixFactorization } from '@advrec/neumf';
import { SASRec } from '@advrec/sasrec';
import { Trainer, loadTfjs, trainSequentialModel } from '@advrec/trainer';
import { median } from '../context.js';
import { movieLens1M } from '../quality/quality-deep.js';

export async function measureDeepThroughput(
  sharedData: string,
  log: (line: string) => void,
  epochs = 2,
): Promise<Record<string, unknown>> {
  const { tf, backend, source } = await loadTfjs();
  const split = leaveLastOut(
    sequencesFromLog(
      await readDelimited(join(sharedData, 'amazon-games-sasrec', 'Video.txt'), {
        delimiter: 'whitespace',
        header: false,
      }),
    ),
  );
  const sequential = async (
    name: string,
    make: () => SequentialModel,
    adversarial: boolean,
  ): Promise<Record<string, unknown>> => {
    const model = make();
    const result = await trainSequentialModel(tf, model, split, {
      epochs: epochs + 1,
      seed: 1,
      ...(adversarial ? { adversarial: { epsilon: 0.05, adversarialWeight: 1 } } : {}),
    });
    const timed = result.epochs.slice(1);
    const record = {
      medianEpochSeconds: median(timed.map((e) => e.seconds)),
      sequencesPerSecond: Math.round(median(timed.map((e) => e.sequencesPerSecond))),
      positionsPerSecond: Math.round(median(timed.map((e) => e.positionsPerSecond))),
    };
    log(`${name}: ${JSON.stringify(record)}`);
    return record;
  };
  const games = {
    data: `Amazon Games (SASRec preprocessing): ${split.numUsers} users, ${split.numItems} items; an epoch = every user with 2+ training items once, batches of 128 sequences`,
    backend: `${backend} (${source}), one thread`,
    sasrec: await sequential('sasrec', () => new SASRec(split.numItems, { seed: 1 }), false),
    sasrecAtsrec: await sequential(
      'sasrec + atsrec',
      () => new SASRec(split.numItems, { seed: 1 }),
      true,
    ),
    gru4rec: await sequential('gru4rec', () => new GRU4Rec(split.numItems, { seed: 1 }), false),
  };
  const directory = await mkdtemp(join(tmpdir(), 'advrec-bench-deep-'));
  try {
    const dataset = await movieLens1M(sharedData, directory);
    const neumf = async (adversarial: boolean) => {
      const model = new NeuralMatrixFactorization(dataset, { embeddingSize: 8, seed: 1 });
      const trainer = await Trainer.create(model, dataset, {
        seed: 1,
        batchSize: 512,
        threads: 2,
        optimizer: { name: 'adagrad', learningRate: 0.05 },
        adversarial: { epsilon: 0.05, adversarialWeight: 1 },
      });
      try {
        const phase = await trainer.runPhase({ epochs: epochs + 1, adversarial });
        const timed = phase.epochs.slice(1);
        const record = {
          engine: trainer.engineInfo.description,
          medianEpochSeconds: median(timed.map((e) => e.seconds)),
          triplesPerSecond: Math.round(median(timed.map((e) => e.triplesPerSecond))),
        };
        log(`neumf ${adversarial ? 'apr' : 'bpr'}: ${JSON.stringify(record)}`);
        return record;
      } finally {
        await trainer.close();
      }
    };
    return {
      neumfMl1m: {
        data: `MovieLens-1M: ${dataset.numUsers} users, ${dataset.numItems} items, ${dataset.train.nnz} training triples per epoch; K = 8, MLP [32, 16, 8], batch 512, Adagrad`,
        bpr: await neumf(false),
        apr: await neumf(true),
      },
      amazonGames: games,
      measuredEpochs: `${epochs} epochs per model after 1 warm-up epoch, medians`,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
