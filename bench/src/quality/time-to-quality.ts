/**
 * `pnpm bench time-to-quality`: how long a user waits for a good model, not how many
 * triples per second a kernel does. On the real Gowalla split (LightGCN's train/test files),
 * K=64, 2 threads:
 *
 * 1. Per-triple SGD throughput against `../shared/tools/bpr-ref.c` (Cornac's BPR loop in C,
 *    built here with gcc when it is available), interleaved in this one run, 1 and 2 threads.
 * 2. MF-BPR by classic per-triple SGD (Cornac's algorithm and hyper-parameters: item bias,
 *    lr 0.05, L2 0.001) with early stopping on a validation split carved from train (one random
 *    interaction from each user of a fixed sample, validated every 50 epochs; the other users
 *    keep all their pairs), then test Recall@20 and
 *    NDCG@20 by full ranking. Wall time from the start to the best checkpoint and in total,
 *    with the trainer's own breakdown (kernel, copies, checks, validation, checkpoints).
 * 3. APR Algorithm 1 from that checkpoint: AMF (mini-batch Adagrad, FGM on both embeddings;
 *    the item bias is trained, not perturbed)
 *    versus BPR continued for the same epochs, paired t-test on test, and the whole APR
 *    pipeline's wall time.
 *
 * Environment: ADVREC_TTQ_EPOCHS (most SGD epochs, 1500), ADVREC_TTQ_LR (0.05),
 * ADVREC_TTQ_L2 (0.001), ADVREC_TTQ_VALIDATE_EVERY (50), ADVREC_TTQ_VALIDATION_USERS (10000),
 * ADVREC_TTQ_PATIENCE (4), ADVREC_TTQ_AMF_EPOCHS (100), ADVREC_TTQ_EPSILON (0.5),
 * ADVREC_TTQ_RATE_ROUNDS (3), ADVREC_TTQ_SKIP_APR (unset).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { holdOutValidation } from '@advrec/data';
import type { Dataset } from '@advrec/data';
import { evaluateFullRanking } from '@advrec/metrics';
import { MatrixFactorization } from '@advrec/models';
import { Trainer, runAprExperiment } from '@advrec/trainer';
import type { PhaseResult, TrainConfig } from '@advrec/trainer';
import { median, type BenchContext } from '../context.js';
import type { BenchAbout, BenchOptionSpec, BenchOptionValues } from '../context.js';
import { gowalla } from '../perf/train.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
export const about: BenchAbout = {
  kind: 'quality',
  what: "the wait for a good model on Gowalla (LightGCN split, K=64, 2 threads): per-triple SGD against `../shared/tools/bpr-ref.c` (Cornac's loop in C, built with gcc in the same run, 1 and 2 threads, interleaved); MF-BPR by per-triple SGD (Cornac's lr 0.05 and L2 0.001, item bias) with early stopping on a validation split carved from the training pairs of a fixed sample of 10,000 users (every 50 epochs; the other users keep all theirs), test Recall/NDCG@20; then AMF vs BPR continued from that checkpoint (mini-batch Adagrad), paired t-test",
  figures:
    '`throughput` (`advrecOverBprRef`, goal 1.0), `mfBpr.test`, `mfBpr.training` (`secondsUntilBest`, `secondsTotal`, `breakdownSeconds`), `mfBpr.meetsTargets` (Recall@20 0.1594, NDCG@20 0.1297, 200 s), `apr.comparison`, `seconds.aprPipeline`',
};

/** Options (`pnpm bench time-to-quality --option value`). */
export const options = {
  rateRounds: { description: 'interleaved throughput rounds', default: 3 },
  learningRate: { description: "per-triple SGD learning rate (Cornac's)", default: 0.05 },
  l2: { description: "L2 (Cornac's)", default: 0.001 },
  validateEvery: { description: 'validate every this many epochs', default: 50 },
  validationUsers: { description: 'validation users (a fixed sample)', default: 10000 },
  patience: { description: 'validations without improvement before stopping', default: 4 },
  amfEpochs: { description: 'epochs of AMF and BPR continued', default: 100 },
  epsilon: { description: 'AMF epsilon', default: 0.5 },
  epochs: { description: 'most MF-BPR epochs', default: 1500 },
  skipApr: { description: 'stop after the MF-BPR (no AMF against BPR continued)', default: false },
} satisfies BenchOptionSpec;

const RATE_EPOCHS = 8;

/** Cornac's BPR (its hyper-parameters) as advrec's per-triple SGD, on `threads` threads. */
function sgdConfig(threads: number, lr: number, l2: number): TrainConfig {
  return {
    seed: 1,
    threads,
    algorithm: 'sgd-triples',
    optimizer: { name: 'sgd', learningRate: lr },
    l2,
  };
}

/** Builds bpr-ref with gcc; null (and why) when it cannot be built here. */
function buildReference(sharedData: string, directory: string): string | { missing: string } {
  const source = join(sharedData, '..', 'tools', 'bpr-ref.c');
  if (!existsSync(source)) return { missing: `${source} not found` };
  const binary = join(directory, 'bpr-ref');
  try {
    execFileSync('gcc', ['-O3', '-march=native', '-fopenmp', '-o', binary, source, '-lm'], {
      stdio: 'pipe',
    });
    return binary;
  } catch (error) {
    return { missing: `gcc could not build bpr-ref: ${String(error).split('\n')[0]}` };
  }
}

/** bpr-ref's median epoch rate over `epochs` epochs. */
function referenceRate(binary: string, train: string, threads: number, epochs: number): number {
  const out = execFileSync(binary, [train, '64', String(epochs), String(threads)], {
    encoding: 'utf8',
  });
  return Number(/median (\d+) triples\/s/.exec(out)![1]);
}

/** advrec's per-triple SGD median epoch rate over `epochs` epochs (after one warm-up), MF with item bias as bpr-ref. */
async function advrecRate(dataset: Dataset, threads: number, epochs: number): Promise<number> {
  const model = new MatrixFactorization(dataset, { embeddingSize: 64, seed: 1, itemBias: true });
  const trainer = await Trainer.create(model, dataset, sgdConfig(threads, 0.05, 0.001));
  try {
    await trainer.runPhase({ epochs: 1, adversarial: false, validate: false });
    const r = await trainer.runPhase({ epochs, adversarial: false, validate: false });
    return median(r.epochs.map((e) => e.triplesPerSecond));
  } finally {
    await trainer.close();
  }
}

function phaseSummary(phase: PhaseResult): Record<string, unknown> {
  const t = phase.timings;
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    epochsRun: phase.epochs.length,
    bestEpoch: phase.bestEpoch,
    bestValidation: phase.bestValue,
    stoppedEarly: phase.stoppedEarly,
    secondsUntilBest: round(t.untilBest),
    secondsTotal: round(t.total),
    breakdownSeconds: {
      training: round(t.training),
      ofWhichTableCopies: round(t.copy),
      checks: round(t.checks),
      callbacks: round(t.callbacks),
      validation: round(t.validation),
      checkpoints: round(t.checkpoints),
      other: round(t.total - t.training - t.checks - t.callbacks - t.validation - t.checkpoints),
    },
    medianTriplesPerSecond: Math.round(median(phase.epochs.map((e) => e.triplesPerSecond))),
    validationCurve: phase.validations.map((v) => [v.epoch, Math.round(v.value * 1e4) / 1e4]),
  };
}

/** Triples per second of advrec and of bpr-ref.c, one and two threads, interleaved rounds. */
async function measureThroughput(
  context: BenchContext,
  evaluation: Dataset,
  directory: string,
  trainFile: string,
  rounds: number,
) {
  const { sharedData, log } = context;
  const reference = buildReference(sharedData, directory);
  const rates: Record<string, number[]> = {
    'bpr-ref-2threads': [],
    'advrec-2threads': [],
    'bpr-ref-1thread': [],
    'advrec-1thread': [],
  };
  for (let round = 0; round < rounds; round++)
    for (const threads of [2, 1]) {
      const suffix = threads === 2 ? '2threads' : '1thread';
      if (typeof reference === 'string')
        rates[`bpr-ref-${suffix}`]!.push(referenceRate(reference, trainFile, threads, RATE_EPOCHS));
      rates[`advrec-${suffix}`]!.push(await advrecRate(evaluation, threads, RATE_EPOCHS));
      log(
        `round ${round} ${suffix}: bpr-ref ${((rates[`bpr-ref-${suffix}`]!.at(-1) ?? 0) / 1e6).toFixed(2)} M/s, advrec ${(rates[`advrec-${suffix}`]!.at(-1)! / 1e6).toFixed(2)} M/s`,
      );
    }
  const rate = (name: string): number | null =>
    rates[name]!.length ? Math.round(median(rates[name]!)) : null;
  const ratio = (suffix: string): number | null => {
    const ours = rates[`advrec-${suffix}`]!;
    const theirs = rates[`bpr-ref-${suffix}`]!;
    if (!theirs.length) return null;
    return Math.round(median(ours.map((r, k) => r / theirs[k]!)) * 1000) / 1000;
  };

  return { reference, rates, rate, ratio, rounds };
}

export async function run(context: BenchContext): Promise<Record<string, unknown>> {
  const { sharedData, log } = context;
  const o = context.options as BenchOptionValues<typeof options>;
  const trainFile = join(sharedData, 'gowalla', 'train.txt');
  const evaluation = await gowalla(sharedData);
  // The validation pairs come from the validated users only: the others keep every training
  // pair (carving one from every user cost 0.003-0.004 test Recall@20, studies/2026-12-07-plateau).
  const tuning = holdOutValidation(evaluation, {
    seed: 1,
    order: 'random',
    users: o.validationUsers,
  });
  const directory = await mkdtemp(join(tmpdir(), 'advrec-ttq-'));
  try {
    // 1. Throughput against the C reference, interleaved.
    const { reference, rates, rate, ratio, rounds } = await measureThroughput(
      context,
      evaluation,
      directory,
      trainFile,
      o.rateRounds,
    );
    // 2. and 3. Time to a good MF-BPR, then APR from its checkpoint.
    const lr = o.learningRate;
    const l2 = o.l2;
    const validation = {
      every: o.validateEvery,
      users: o.validationUsers,
      patience: o.patience,
      metric: 'recall@20',
    };
    const skipApr = o.skipApr;
    const amfEpochs = skipApr ? 0 : o.amfEpochs;
    const epsilon = o.epsilon;
    const started = performance.now();
    const result = await runAprExperiment(tuning, {
      embeddingSize: 64,
      modelSeed: 1,
      itemBias: true,
      pretrainingTrain: { ...sgdConfig(2, lr, l2), validation },
      // APR's own recipe for the continuations: mini-batch Adagrad, FGM on both embeddings.
      train: {
        seed: 1,
        threads: 2,
        batchSize: 512,
        adversarial: { adversary: 'fgm', epsilon, adversarialWeight: 1 },
        validation: { every: 10, users: validation.users, metric: validation.metric },
      },
      bprEpochs: o.epochs,
      continueEpochs: amfEpochs,
      continuation: { optimizerState: 'fresh', keepBest: true },
      checkpoints: directory,
      evaluate: (model) =>
        evaluateFullRanking(model, tuning, {
          split: 'test',
          cutoffs: [20],
          metrics: ['recall', 'ndcg'],
        }),
      attack: false,
      callbacks: (stage) => ({
        onValidation: (v) => {
          log(
            `${stage} epoch ${v.epoch} ${validation.metric} ${v.value.toFixed(4)}${v.improved ? ' *' : ''} (${((performance.now() - started) / 1000).toFixed(1)} s)`,
          );
        },
      }),
    });
    const seconds = (performance.now() - started) / 1000;
    const test = Object.fromEntries(result.test);
    const mfTest = test['MF-BPR']!.metrics;
    const targets = { recall20: 0.1594, ndcg20: 0.1297, secondsUntilBest: 200 };
    const bpr = phaseSummary(result.pretraining);
    log(
      `MF-BPR test recall@20 ${mfTest['recall@20']!.toFixed(4)} ndcg@20 ${mfTest['ndcg@20']!.toFixed(4)}, best after ${String(bpr['secondsUntilBest'])} s`,
    );
    const comparison = Object.fromEntries(
      Object.entries(result.comparison.metrics).map(([key, c]) => [
        key,
        {
          bprContinued: c.b,
          amf: c.a,
          relativeImprovement: c.relative,
          pairedTTestP: c.tTestP,
        },
      ]),
    );
    return {
      dataset: 'gowalla (LightGCN split: 29,858 users, 40,981 items, 810,128 train / 217,242 test)',
      protocol: {
        training: `train minus one random validation interaction per validated user (${o.validationUsers} users, seed 1)`,
        test: 'LightGCN test file, full ranking over all items, train and validation items excluded',
        mfBpr: {
          algorithm: 'sgd-triples (classic per-triple SGD, Cornac’s algorithm), Hogwild',
          model: 'MF with item bias (y = p_u . q_i + b_i, as Cornac’s BPR)',
          threads: 2,
          embeddingSize: 64,
          learningRate: lr,
          l2,
          maxEpochs: o.epochs,
          validation,
        },
        apr: skipApr
          ? 'skipped (ADVREC_TTQ_SKIP_APR=1)'
          : {
              from: 'the best MF-BPR checkpoint (APR Algorithm 1), fresh Adagrad state',
              epochs: amfEpochs,
              optimizer: 'mini-batch Adagrad lr 0.05, batch 512, deterministic, 2 threads',
              adversary: `FGM on both embeddings, epsilon ${epsilon}, lambda 1`,
              keepBest: 'each arm keeps its best validation epoch',
            },
      },
      throughput: {
        epochsPerMeasurement: RATE_EPOCHS,
        rounds,
        reference:
          typeof reference === 'string'
            ? 'bpr-ref.c (gcc -O3 -march=native -fopenmp), same machine, same run'
            : reference.missing,
        medianTriplesPerSecond: Object.fromEntries(Object.keys(rates).map((k) => [k, rate(k)])),
        advrecOverBprRef: { twoThreads: ratio('2threads'), oneThread: ratio('1thread') },
        goal: 1,
      },
      mfBpr: {
        test: mfTest,
        targets,
        meetsTargets:
          mfTest['recall@20']! >= targets.recall20 &&
          mfTest['ndcg@20']! >= targets.ndcg20 &&
          (bpr['secondsUntilBest'] as number) <= targets.secondsUntilBest,
        training: bpr,
      },
      apr: skipApr
        ? null
        : {
            bprContinued: phaseSummary(result.arms.at(-2)!.phase!),
            amf: phaseSummary(result.amfRuns[0]!.phase),
            comparison,
            target: 'ndcg@20 +5% over BPR continued, p < 0.01',
          },
      seconds: {
        mfBprPhase: Math.round(result.pretraining.timings.total * 10) / 10,
        aprPipeline: Math.round(seconds * 10) / 10,
      },
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
