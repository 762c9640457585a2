/**
 * `pnpm bench sequential`: epoch times of SASRec and GRU4Rec on Amazon Games, the old way (tfjs
 * autodiff on its wasm backend) against the new (SASRec's hand-written kernel, on 1 and on 2
 * threads), in one run, with the same data, seed and batches.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { leaveLastOut, readDelimited, sequencesFromLog } from '@advrec/data';
import type { SequenceSplit } from '@advrec/data';
import { SEQUENCE_ITEM_TABLE } from '@advrec/models';
import type { SequentialModel } from '@advrec/models';
import { GRU4Rec } from '@advrec/gru4rec';
import { SASRec } from '@advrec/sasrec';
import { loadTfjs, trainSequentialModel } from '@advrec/trainer';
import type { SequenceEngineName } from '@advrec/trainer';
import { median, type BenchAbout, type BenchContext, type BenchOptionSpec } from '../context.js';

export const about: BenchAbout = {
  kind: 'perf',
  what: "SASRec (d 50, 2 blocks, length 50, dropout 0.5) and GRU4Rec (d 64, h 64) epochs on Amazon Games (SASRec preprocessing, 31,013 users, batch 128): tfjs autodiff on the wasm backend (the old path) against each model's hand-written kernel on 1 and 2 threads, same run, same seed",
  figures:
    '`<model>.<arm>.medianEpochSeconds` (epochs after the first), `<model>.speedup` (tfjs over the 2-thread kernel), `<model>.identicalAcrossThreads` (item table after the last epoch, 1 vs 2 threads); target: speedup >= 3',
};

export const options = {
  epochs: { description: 'epochs per arm (the first is not counted in the median)', default: 3 },
  gru4rec: { description: 'also time GRU4Rec', default: true },
} satisfies BenchOptionSpec;

const SEED = 2024;

interface Arm {
  readonly engine: SequenceEngineName;
  readonly threads?: number;
}

async function timeArm(
  split: SequenceSplit,
  make: () => SequentialModel,
  arm: Arm,
  epochs: number,
  log: (line: string) => void,
  label: string,
) {
  const { tf, backend } = await loadTfjs();
  const model = make();
  const result = await trainSequentialModel(tf, model, split, {
    epochs,
    seed: SEED,
    engine: arm.engine,
    ...(arm.threads ? { threads: arm.threads } : {}),
    onEpoch: (e) =>
      log(`${label}: epoch ${e.epoch + 1} ${e.seconds.toFixed(2)} s, loss ${e.loss.toFixed(4)}`),
  });
  const seconds = result.epochs.map((e) => e.seconds);
  return {
    record: {
      engine: result.engine.description,
      threads: result.engine.threads,
      tfjsBackend: backend,
      epochSeconds: seconds,
      medianEpochSeconds: median(seconds.length > 1 ? seconds.slice(1) : seconds),
      losses: result.epochs.map((e) => e.loss),
    },
    items: Float32Array.from(model.tables.find((t) => t.name === SEQUENCE_ITEM_TABLE)!.values),
  };
}

export async function run({
  sharedData,
  log,
  options: o,
}: BenchContext): Promise<Record<string, unknown>> {
  const epochs = o['epochs'] as number;
  const file = join(sharedData, 'amazon-games-sasrec', 'Video.txt');
  const split = leaveLastOut(
    sequencesFromLog(await readDelimited(file, { delimiter: 'whitespace', header: false })),
  );
  /** One model's three arms (tfjs, kernel on 1 and on 2 threads) and their ratios. */
  const compare = async (name: string, make: () => SequentialModel) => {
    const tfjs = await timeArm(split, make, { engine: 'tfjs' }, epochs, log, `${name} tfjs`);
    const one = await timeArm(
      split,
      make,
      { engine: 'model-kernel', threads: 1 },
      epochs,
      log,
      `${name} kernel 1 thread`,
    );
    const two = await timeArm(
      split,
      make,
      { engine: 'model-kernel', threads: 2 },
      epochs,
      log,
      `${name} kernel 2 threads`,
    );
    return {
      tfjs: tfjs.record,
      kernel1Thread: one.record,
      kernel2Threads: two.record,
      speedup: tfjs.record.medianEpochSeconds / two.record.medianEpochSeconds,
      speedup1Thread: tfjs.record.medianEpochSeconds / one.record.medianEpochSeconds,
      identicalAcrossThreads: one.items.every((v, k) => Object.is(v, two.items[k])),
    };
  };
  const results: Record<string, unknown> = {
    dataset: `Amazon Games (${split.numUsers} users, ${split.numItems} items)`,
    cores: availableParallelism(),
    order:
      'arms run one after another in this order (tfjs, kernel 1 thread, kernel 2 threads), each from the same initialisation',
    sasrec: await compare('sasrec', () => new SASRec(split.numItems, { seed: SEED })),
  };
  if (o['gru4rec'])
    results['gru4rec'] = await compare(
      'gru4rec',
      () => new GRU4Rec(split.numItems, { seed: SEED }),
    );
  return results;
}
