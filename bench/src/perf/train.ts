/**
 * `pnpm bench train`: training throughput of MF on the real Gowalla train set (810,128
 * interactions), K=64, batch 512, Adagrad, in triples per second, for BPR and APR (FGM on
 * both embeddings, epsilon 0.5, lambda 1) with the default deterministic kernel on 2 and 1
 * threads, the opt-in Hogwild mode, and classic per-triple SGD BPR (the algorithm of
 * Cornac and implicit). Variants are interleaved, several epochs each, medians reported;
 * ratios are taken within this one run. Then the VBPR and AMR mini-batch step at ML-1M size
 * (6,040 users, 3,706 items, K=64, 1280-d features, batch 512; AMR: FGM on the features),
 * each round in its own process (`bench/scripts/measure.mjs`, shared with `engine-seam`).
 * Then the deterministic mode with a CPU-bound process competing for the cores (interleaved
 * with idle runs), and the trainer end to end (validation every 10 epochs, on all users and
 * on a 5,000-user sample) against its engine's rate in the same phase.
 * Last, VBPR and AMR at the AMR paper's Amazon scale (83,337 users, 299,555 items, 2048-d
 * features) in a process of its own: 60 timed batches each, scaled to an epoch, and the
 * process's peak RSS (budget 8 GiB).
 * Then the deep models (lib/deep-throughput.ts): NeuMF on ML-1M, SASRec, SASRec + ATSRec and
 * GRU4Rec on Amazon Games, epoch times and throughput.
 * ADVREC_TRAIN_PARTS (mf,deep) picks the parts; a part not run keeps its results from the
 * previous bench/results/train.json, marked `carriedOver`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { givenSplit, holdOutValidation, readUserItemLists } from '@advrec/data';
import type { Dataset } from '@advrec/data';
import { MatrixFactorization } from '@advrec/models';
import { Trainer } from '@advrec/trainer';
import type { TrainConfig } from '@advrec/trainer';
import {
  REPOSITORY_ROOT,
  carriedOver,
  median,
  previousResults,
  type BenchContext,
} from '../context.js';
import type { BenchAbout, BenchOptionSpec, BenchOptionValues } from '../context.js';
import { measureDeepThroughput } from '../lib/deep-throughput.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
const ROOT = REPOSITORY_ROOT;

export const about: BenchAbout = {
  kind: 'perf',
  what: "MF training throughput on the real Gowalla train set (810,128 triples per epoch), K=64, batch 512, Adagrad: BPR and APR (FGM on both embeddings) with the deterministic kernel on 2 and 1 threads, Hogwild, classic per-triple SGD; interleaved rounds; then the VBPR and AMR mini-batch step at ML-1M size (K=64, 1280-d features, batch 512), and VBPR and AMR at the AMR paper's Amazon scale (83,337 users, 299,555 items, 2048-d features) in a process of its own (60 timed batches each, scaled to an epoch)",
  figures:
    '`bprTriplesPerSecond`, `aprTriplesPerSecond`, `aprOverBprCost` (2 threads, deterministic; targets 1.2 M/s and 2.0), `oneThread`, `hogwild`, `perTripleSgdBpr`, `visualStep` (`vbprStepMilliseconds`, `amrStepMilliseconds`), `amazonScale` (batch milliseconds, estimated epoch seconds, `peakRssMiB`, `withinBudget` 8 GiB), `contention` (`competingOverIdle`, target 0.67), `trainerEndToEnd` (`endToEndOverEngine` with all and 5,000 sampled validation users, target 0.9), `peakRssMiB`, every sample',
};

/** Options (`pnpm bench train --parts mf`). */
export const options = {
  parts: {
    description:
      'what to measure: `mf` (MF, VBPR/AMR steps, overheads, Amazon scale), `deep` (NeuMF, SASRec, GRU4Rec), `overheads` or `amazon-scale` alone; a part not run keeps its section from the previous results, marked carriedOver',
    default: ['mf', 'deep'],
    choices: ['mf', 'deep', 'overheads', 'amazon-scale'],
  },
} satisfies BenchOptionSpec;

const ROUNDS = 3;
const EPOCHS_PER_ROUND = 2;

interface Variant {
  readonly name: string;
  readonly adversarial: boolean;
  readonly config: TrainConfig;
}

const VARIANTS: Variant[] = [
  { name: 'bpr-2threads', adversarial: false, config: { threads: 2 } },
  { name: 'apr-2threads', adversarial: true, config: { threads: 2 } },
  { name: 'bpr-1thread', adversarial: false, config: { threads: 1 } },
  { name: 'apr-1thread', adversarial: true, config: { threads: 1 } },
  { name: 'bpr-hogwild-2threads', adversarial: false, config: { threads: 2, mode: 'hogwild' } },
  { name: 'apr-hogwild-2threads', adversarial: true, config: { threads: 2, mode: 'hogwild' } },
  {
    name: 'sgd-triples-1thread',
    adversarial: false,
    config: {
      threads: 1,
      algorithm: 'sgd-triples',
      optimizer: { name: 'sgd', learningRate: 0.05 },
      l2: 0.0025,
    },
  },
  {
    name: 'sgd-triples-2threads',
    adversarial: false,
    config: {
      threads: 2,
      algorithm: 'sgd-triples',
      optimizer: { name: 'sgd', learningRate: 0.05 },
      l2: 0.0025,
    },
  },
];

/**
 * The trainer end to end: one phase of MF-BPR (deterministic, 2 threads) validating every
 * 10 epochs on `users` sampled users (all when null), its wall time against the engine's
 * own epoch rate in the same phase.
 */
async function endToEnd(tuning: Dataset, users: number | null): Promise<Record<string, number>> {
  const model = new MatrixFactorization(tuning, { embeddingSize: 64, seed: 1 });
  const trainer = await Trainer.create(model, tuning, {
    seed: 1,
    threads: 2,
    validation: { every: 10, metric: 'recall@20', ...(users === null ? {} : { users }) },
  });
  try {
    await trainer.runPhase({ epochs: 1, adversarial: false, validate: false });
    const r = await trainer.runPhase({ epochs: 20, adversarial: false });
    const triples = r.epochs.reduce((n, e) => n + e.triples, 0);
    const t = r.timings;
    const engineRate = triples / t.training;
    const endToEndRate = triples / t.total;
    return {
      engineTriplesPerSecond: Math.round(engineRate),
      endToEndTriplesPerSecond: Math.round(endToEndRate),
      endToEndOverEngine: Number((endToEndRate / engineRate).toFixed(3)),
      secondsTotal: Number(t.total.toFixed(2)),
      secondsTraining: Number(t.training.toFixed(2)),
      secondsTableCopies: Number(t.copy.toFixed(2)),
      secondsChecks: Number(t.checks.toFixed(2)),
      secondsValidation: Number(t.validation.toFixed(2)),
      secondsCheckpoints: Number(t.checkpoints.toFixed(2)),
    };
  } finally {
    await trainer.close();
  }
}

/**
 * The deterministic mode with a CPU-bound process beside it (interleaved with idle runs),
 * and the trainer end to end against its engine. Also `pnpm bench train --parts overheads`.
 */
export async function measureTrainerOverheads(
  dataset: Dataset,
  log: (line: string) => void,
): Promise<Record<string, unknown>> {
  const bprVariant = VARIANTS[0]!;
  const contention = { idle: [] as number[], competing: [] as number[] };
  const ceiling = { idle: [] as number[], competing: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    contention.idle.push(...(await measure(dataset, bprVariant, round)));
    contention.competing.push(...(await withCompetitor(() => measure(dataset, bprVariant, round))));
    ceiling.idle.push(await unsynchronisedRate());
    ceiling.competing.push(await withCompetitor(unsynchronisedRate));
    log(
      `round ${round} contention: idle ${(contention.idle.at(-1)! / 1e6).toFixed(3)}, with a competing process ${(contention.competing.at(-1)! / 1e6).toFixed(3)} M triples/s; two unsynchronised threads keep ${(ceiling.competing.at(-1)! / ceiling.idle.at(-1)!).toFixed(3)}`,
    );
  }
  const ceilingRatio = median(ceiling.competing) / median(ceiling.idle);
  const kernelRatio = median(contention.competing) / median(contention.idle);
  const tuning = holdOutValidation(dataset, { seed: 1, order: 'random' });
  const trainerEndToEnd = {
    allValidationUsers: await endToEnd(tuning, null),
    sampledValidationUsers: await endToEnd(tuning, 5000),
  };
  log(`trainer end to end: ${JSON.stringify(trainerEndToEnd)}`);
  return {
    contention: {
      variant:
        'MF-BPR, deterministic, 2 threads, with and without a CPU-bound process (node -e "for(;;){}") beside it, interleaved',
      idleTriplesPerSecond: Math.round(median(contention.idle)),
      competingTriplesPerSecond: Math.round(median(contention.competing)),
      competingOverIdle: Number(kernelRatio.toFixed(3)),
      target: 0.67,
      samples: contention,
      // What the scheduler allows: 2 threads and 1 competitor on 2 cores get 2/3 each.
      fairShareCeiling: {
        what: 'the same ratio for two worker threads of pure arithmetic that never synchronise (the most any 2-thread trainer can keep beside one CPU-bound process)',
        competingOverIdle: Number(ceilingRatio.toFixed(3)),
        kernelOverCeiling: Number((kernelRatio / ceilingRatio).toFixed(3)),
        samples: ceiling,
      },
    },
    trainerEndToEnd: {
      protocol:
        'MF-BPR, deterministic, 2 threads, 20 epochs validating every 10 (Recall@20, full ranking) on Gowalla train minus one validation interaction per user',
      target: 'end to end >= 0.9 of the engine rate',
      ...trainerEndToEnd,
    },
  };
}

/**
 * Work per second of two worker threads doing pure arithmetic with no synchronisation and no
 * memory traffic: the upper bound of what any 2-thread trainer keeps when the cores are shared.
 */
async function unsynchronisedRate(): Promise<number> {
  const iterations = 60_000_000;
  const code = `const { parentPort, workerData } = require('node:worker_threads');
let x = 0.5;
for (let i = 0; i < workerData; i++) x = x * 1.0000001 + 1e-9;
parentPort.postMessage(x);`;
  const started = performance.now();
  await Promise.all(
    [0, 1].map(
      () =>
        new Promise<void>((done, fail) => {
          const worker = new Worker(code, { eval: true, workerData: iterations });
          worker.once('message', () => void worker.terminate().then(() => done()));
          worker.once('error', fail);
        }),
    ),
  );
  return (2 * iterations) / ((performance.now() - started) / 1000);
}

/** A CPU-bound process competing for the cores while `work` runs. */
async function withCompetitor<T>(work: () => Promise<T>): Promise<T> {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 200));
  try {
    return await work();
  } finally {
    child.kill('SIGKILL');
  }
}

async function measure(dataset: Dataset, variant: Variant, round: number): Promise<number[]> {
  const model = new MatrixFactorization(dataset, { embeddingSize: 64, seed: round });
  const trainer = await Trainer.create(model, dataset, {
    seed: round,
    batchSize: 512,
    ...variant.config,
  });
  try {
    // One warm-up epoch (JIT, worker start-up), then the measured ones.
    await trainer.runPhase({ epochs: 1, adversarial: variant.adversarial, validate: false });
    const result = await trainer.runPhase({
      epochs: EPOCHS_PER_ROUND,
      adversarial: variant.adversarial,
      validate: false,
    });
    return result.epochs.map((e) => e.triplesPerSecond);
  } finally {
    await trainer.close();
  }
}

/** Gowalla's LightGCN split. */
export async function gowalla(sharedData: string): Promise<Dataset> {
  return givenSplit(
    await readUserItemLists(join(sharedData, 'gowalla', 'train.txt')),
    await readUserItemLists(join(sharedData, 'gowalla', 'test.txt')),
  );
}

export async function run(context: BenchContext): Promise<Record<string, unknown>> {
  const parts = (context.options as BenchOptionValues<typeof options>).parts;
  const previous = await previousResults('train');
  let mf = parts.includes('mf')
    ? await runMf(context)
    : carriedOver(
        previous,
        Object.fromEntries(
          Object.entries(previous?.results ?? {}).filter(([key]) => key !== 'deepModels'),
        ),
      );
  // The trainer overheads and the Amazon-scale step alone, over the carried-over MF section.
  if (!parts.includes('mf') && parts.includes('overheads'))
    mf = {
      ...mf,
      ...(await measureTrainerOverheads(await gowalla(context.sharedData), context.log)),
    };
  if (!parts.includes('mf') && parts.includes('amazon-scale')) {
    mf = { ...mf, amazonScale: measureAmazonScale(ROOT, context.sharedData) };
  }
  const deepModels = parts.includes('deep')
    ? await measureDeepThroughput(context.sharedData, context.log)
    : carriedOver(previous, previous?.results?.deepModels);
  return { ...mf, deepModels };
}

async function runMf({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const dataset = await gowalla(sharedData);
  const samples = new Map<string, number[]>(VARIANTS.map((v) => [v.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of VARIANTS) {
      const rates = await measure(dataset, variant, round);
      samples.get(variant.name)!.push(...rates);
      log(
        `round ${round} ${variant.name}: ${rates.map((r) => (r / 1e6).toFixed(3)).join(', ')} M triples/s`,
      );
    }
  }
  const steps: Record<string, number[]> = { 'vbpr-step': [], 'amr-step': [] };
  for (let round = 0; round < ROUNDS; round++)
    for (const task of Object.keys(steps)) {
      const out = execFileSync(
        process.execPath,
        [join(ROOT, 'bench', 'scripts', 'measure.mjs'), ROOT, task, sharedData, String(round)],
        { encoding: 'utf8' },
      );
      const { stepMilliseconds } = JSON.parse(out.trim().split('\n').at(-1)!) as {
        stepMilliseconds: number;
      };
      steps[task]!.push(stepMilliseconds);
      log(`round ${round} ${task}: ${stepMilliseconds.toFixed(1)} ms per batch`);
    }
  const trainer = await measureTrainerOverheads(dataset, log);
  const amazonScale = measureAmazonScale(ROOT, sharedData);
  log(`amazon-scale: ${JSON.stringify(amazonScale)}`);
  const med = (name: string): number => Math.round(median(samples.get(name)!));
  const bpr = med('bpr-2threads');
  const apr = med('apr-2threads');
  return {
    dataset: 'gowalla train (LightGCN split)',
    users: dataset.numUsers,
    items: dataset.numItems,
    triplesPerEpoch: dataset.train.nnz,
    embeddingSize: 64,
    batchSize: 512,
    optimizer: 'adagrad (lr 0.05, initial accumulator 0.1)',
    adversary: 'fgm on user and item embeddings, epsilon 0.5, adversarialWeight 1',
    threads: 2,
    mode: 'deterministic',
    bprTriplesPerSecond: bpr,
    aprTriplesPerSecond: apr,
    aprOverBprCost: Number((bpr / apr).toFixed(3)),
    oneThread: {
      bprTriplesPerSecond: med('bpr-1thread'),
      aprTriplesPerSecond: med('apr-1thread'),
      aprOverBprCost: Number((med('bpr-1thread') / med('apr-1thread')).toFixed(3)),
    },
    hogwild: {
      threads: 2,
      bprTriplesPerSecond: med('bpr-hogwild-2threads'),
      aprTriplesPerSecond: med('apr-hogwild-2threads'),
    },
    perTripleSgdBpr: {
      oneThreadTriplesPerSecond: med('sgd-triples-1thread'),
      twoThreadsTriplesPerSecond: med('sgd-triples-2threads'),
    },
    samplesTriplesPerSecond: Object.fromEntries(samples),
    ...trainer,
    visualStep: {
      data: 'ML-1M users and items (6,040 x 3,706), 100 batches of 512 training pairs, random 1280-d features',
      embeddingSize: 64,
      featureDimension: 1280,
      batchSize: 512,
      vbprStepMilliseconds: Number(median(steps['vbpr-step']!).toFixed(2)),
      amrStepMilliseconds: Number(median(steps['amr-step']!).toFixed(2)),
      samplesMilliseconds: steps,
    },
    amazonScale,
    measuredEpochs: `${ROUNDS} rounds x ${EPOCHS_PER_ROUND} epochs per variant, interleaved, after 1 warm-up epoch each`,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

/**
 * VBPR and AMR at the AMR paper's Amazon scale, once, in a process of its own (so its peak
 * RSS is its own): `bench/scripts/measure.mjs amazon-scale`. Also `pnpm bench train --parts amazon-scale`.
 */
export function measureAmazonScale(root: string, sharedData: string): Record<string, unknown> {
  const out = execFileSync(
    process.execPath,
    [join(root, 'bench', 'scripts', 'measure.mjs'), root, 'amazon-scale', sharedData, '0'],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const figures = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>;
  return {
    data: "the AMR paper's Amazon scale (Table 1): 83,337 users, 299,555 items, 706,949 synthetic interactions (every item at least once, then a skewed popularity), random leave-one-out, random non-negative 2048-d float32 features",
    model:
      'VBPR (shared), K=64, centred features, item-ID dropout 0.2; batch 512, Adagrad, 2 threads; AMR: FGM on the item features, epsilon 0.1 of the row norm',
    budgetMiB: 8192,
    withinBudget: figures['peakRssMiB']! <= 8192,
    ...figures,
  };
}
