/**
 * `pnpm bench data`: loading the shared data sets into split Datasets, and BPR triple
 * sampling throughput on Gowalla (one core, the main thread).
 */
import { join } from 'node:path';
import {
  describe,
  givenSplit,
  leaveOneOut,
  readMovieLens100K,
  readUserItemLists,
  TripleSampler,
  type Dataset,
} from '@advrec/data';
import { median, secondsSince, type BenchContext } from '../context.js';
import type { BenchAbout } from '../context.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
export const about: BenchAbout = {
  kind: 'perf',
  what: 'load Gowalla, ML-100K (leave-one-out) and ML-1M into split data sets; BPR triple sampling on Gowalla, one core',
  figures:
    'per data set `users`, `items`, `train`, `test`, `loadSeconds` (median of 5); `samplerTriplesPerSecond` (median of 10 whole epochs, shuffle included; target 20 M/s)',
};

const LOAD_RUNS = 5;
const SAMPLER_EPOCHS = 24;
const WARMUP_EPOCHS = 4;

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const loaders: Record<string, { protocol: string; load: () => Promise<Dataset> }> = {
    gowalla: {
      protocol: 'given split (train.txt / test.txt)',
      load: async () =>
        givenSplit(
          await readUserItemLists(join(sharedData, 'gowalla', 'train.txt')),
          await readUserItemLists(join(sharedData, 'gowalla', 'test.txt')),
        ),
    },
    ml100k: {
      protocol: 'leave-one-out, latest by timestamp (seed 0)',
      load: async () =>
        leaveOneOut(await readMovieLens100K(join(sharedData, 'movielens-100k', 'u.data'))),
    },
    ml1m: {
      protocol: 'given split (train.txt / test.txt)',
      load: async () =>
        givenSplit(
          await readUserItemLists(join(sharedData, 'ml-1m', 'train.txt')),
          await readUserItemLists(join(sharedData, 'ml-1m', 'test.txt')),
        ),
    },
  };
  const results: Record<string, unknown> = {};
  const datasets: Record<string, Dataset> = {};
  for (const [name, { protocol, load }] of Object.entries(loaders)) {
    const seconds: number[] = [];
    let dataset: Dataset | undefined;
    for (let r = 0; r < LOAD_RUNS; r++) {
      const start = performance.now();
      dataset = await load();
      seconds.push(secondsSince(start));
    }
    const d = describe(dataset!);
    datasets[name] = dataset!;
    results[name] = {
      users: d.users,
      items: d.items,
      train: d.train.interactions,
      test: d.test.interactions,
      coldStartTestInteractions: d.coldStartTestInteractions,
      protocol,
      loadSeconds: round(median(seconds)),
      loadSecondsRuns: seconds.map(round),
    };
    log(
      `${name}: ${d.users} users, ${d.items} items, ${d.train.interactions} + ${d.test.interactions}, load ${median(seconds).toFixed(3)} s (median of ${LOAD_RUNS})`,
    );
  }

  const train = datasets['gowalla']!.train;
  const orders = ['shuffle', 'with-replacement'] as const;
  const samplers = orders.map(
    (order) => new TripleSampler(train, { seed: 1, batchSize: 512, order }),
  );
  const out = samplers[0]!.allocate();
  const rates: number[][] = orders.map(() => []);
  const shuffleSeconds: number[] = [];
  // The two orders alternate epoch by epoch, so both see the same machine conditions.
  for (let epoch = 0; epoch < SAMPLER_EPOCHS; epoch++) {
    samplers.forEach((sampler, k) => {
      const start = performance.now();
      if (sampler.order === 'shuffle') {
        sampler.shuffledPairsOf(epoch); // timed apart for the record; batch() would do it anyway
        shuffleSeconds.push(secondsSince(start));
      }
      let triples = 0;
      for (let b = 0; b < sampler.batchesPerEpoch; b++)
        triples += sampler.batch(epoch, b, out).size;
      rates[k]!.push(triples / secondsSince(start));
    });
  }
  const sampler: Record<string, unknown> = {};
  orders.forEach((order, k) => {
    const steady = rates[k]!.slice(WARMUP_EPOCHS); // the first epochs warm the JIT up
    sampler[order] = {
      triplesPerSecond: Math.round(median(steady)),
      epochs: steady.length,
      perEpoch: rates[k]!.map(Math.round),
    };
    log(
      `sampler (${order}): ${(median(steady) / 1e6).toFixed(1)} M triples/s, median of ${steady.length} whole epochs`,
    );
  });
  const shuffleMedian = median(shuffleSeconds.slice(WARMUP_EPOCHS));
  log(
    `shuffle of the epoch's pairs: ${(shuffleMedian * 1000).toFixed(1)} ms per epoch (included above)`,
  );
  return {
    ...results,
    samplerTriplesPerSecond: (sampler['shuffle'] as { triplesPerSecond: number }).triplesPerSecond,
    samplerTarget: 20_000_000,
    sampler: {
      dataset: 'gowalla',
      batchSize: 512,
      threads: 1,
      note: 'whole epochs (810,128 triples), the per-epoch shuffle included; median after warm-up',
      shuffleSecondsPerEpoch: round(shuffleMedian),
      ...sampler,
    },
  };
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
