/**
 * `pnpm bench quality-deep`: NeuMF (the `@advrec/neumf` model package: defined only through
 * the public Model contract, trained by the generic engine, attacked and made robust with no
 * change to the core) on MovieLens-1M, the NCF paper's protocol as far as the shared files
 * allow: the shared train/test files merged back into all 1,000,209 interactions, one random
 * interaction per user held out for test (the files carry no timestamps, so not the latest
 * as in NCF) and one more from train for validation; 100 sampled negatives per test case;
 * HR@10 and NDCG@10.
 *
 * NeuMF with 8 predictive factors (MLP 64 -> 32 -> 16 -> 8), BPR with mini-batch Adagrad
 * (batch 512), early stopping on validation NDCG@10 (full ranking of a fixed sample of
 * users); then from the best checkpoint, with its Adagrad state: NeuMF continued (BPR) and
 * APR on NeuMF (FGM on its four embedding tables, lambda 1) at each epsilon, the same epochs;
 * paired t-tests over the test users; robustness of each to FGM on the embeddings.
 * Options: --neumf-epochs (20), --neumf-continue-epochs (6), --neumf-epsilons (0.05,0.5).
 *
 * Then (`sequential`, see lib/sequential-quality.ts) SASRec and GRU4Rec on Amazon Games with
 * the SASRec paper's protocol, one child process each, in parallel; SASRec + ATSRec against
 * SASRec continued. --parts (neumf,sasrec,gru4rec) picks the parts to run; a part
 * not run keeps its section from the previous results file, marked `carriedOver`.
 * --seq-epochs (80), --seq-continue-epochs (10), --atsrec-epsilons (0.1,0.5),
 * --seq-attack-epsilons (0.25,0.5,1), both relative to the mean item-row norm.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  generateSampledTestSet,
  holdOutValidation,
  leaveOneOut,
  readUserItemLists,
} from '@advrec/data';
import type { Dataset, SampledTestSet } from '@advrec/data';
import { evaluateSampled, pairedTTest, robustnessSweep } from '@advrec/metrics';
import type { EvaluationResult } from '@advrec/metrics';
import { cloneTable } from '@advrec/models';
import type { Model, ParameterTable } from '@advrec/models';
import { NeuralMatrixFactorization } from '@advrec/neumf';
import { trainStage } from '@advrec/trainer';
import type { TrainConfig } from '@advrec/trainer';
import { carriedOver, previousResults } from '../context.js';
import type { BenchAbout, BenchContext, BenchOptionSpec, BenchOptionValues } from '../context.js';
import type { SequentialQualitySettings } from '../lib/sequential-quality.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
export const about: BenchAbout = {
  kind: 'quality',
  what: 'NeuMF (`@advrec/neumf`, through the public Model contract) on MovieLens-1M under the NCF protocol (100 sampled negatives, HR/NDCG@10): BPR with early stopping, then NeuMF continued against APR on NeuMF at each epsilon, paired t-tests, robustness; then SASRec and GRU4Rec on Amazon Games under the SASRec protocol, SASRec + ATSRec against SASRec continued',
  figures:
    'per model `test`, `comparison` (p-values), `robustness`; per sequential model its validation curve and test HR/NDCG@10 beside the published figures',
};

/** Options (`pnpm bench quality-deep --parts sasrec`). */
export const options = {
  parts: {
    description: 'parts to run; a part not run keeps its section from the previous results',
    default: ['neumf', 'sasrec', 'gru4rec'],
    choices: ['neumf', 'sasrec', 'gru4rec'],
  },
  neumfEpochs: { description: 'most NeuMF BPR epochs', default: 20 },
  neumfContinueEpochs: { description: 'epochs of NeuMF continued and of APR', default: 6 },
  neumfEpsilons: { description: 'APR epsilons on NeuMF', default: [0.05, 0.5] },
  seqEpochs: { description: 'most SASRec / GRU4Rec epochs (the paper: up to 200)', default: 200 },
  seqContinueEpochs: { description: 'epochs of the continuations and ATSRec', default: 10 },
  atsrecEpsilons: { description: 'ATSRec epsilons, relative', default: [0.1, 0.5] },
  seqAttackEpsilons: { description: 'FGM attack epsilons, relative', default: [0.25, 0.5, 1] },
  gru4recAtsrec: { description: 'run ATSRec on GRU4Rec too', default: false },
} satisfies BenchOptionSpec;

type DeepOptions = BenchOptionValues<typeof options>;

const SEED = 2024;

/** ML-1M with the shared train and test files merged back, random leave-one-out, a validation item per user. */
export async function movieLens1M(sharedData: string, directory: string): Promise<Dataset> {
  const lists = new Map<string, string[]>();
  for (const file of ['train.txt', 'test.txt'])
    for (const line of (await readFile(join(sharedData, 'ml-1m', file), 'utf8')).split('\n')) {
      const [user, ...items] = line.trim().split(/\s+/);
      if (user) lists.set(user, [...(lists.get(user) ?? []), ...items]);
    }
  const all = join(directory, 'all.txt');
  await writeFile(all, [...lists].map(([u, items]) => `${u} ${items.join(' ')}`).join('\n') + '\n');
  const split = leaveOneOut(await readUserItemLists(all), { order: 'random', seed: SEED });
  return holdOutValidation(split, { order: 'random', seed: SEED });
}

/** One NeuMF stage through the library's trainStage: its record for the result JSON and the optimiser state. */
async function trainedStage(
  dataset: Dataset,
  log: (line: string) => void,
  run: {
    readonly name: string;
    readonly model: Model;
    readonly config: TrainConfig;
    readonly epochs: number;
    readonly adversarial: boolean;
    readonly state?: readonly ParameterTable[];
  },
) {
  const { name, model, config, epochs, adversarial, state } = run;
  const started = performance.now();
  const { phase, optimizerState, engine } = await trainStage(model, dataset, config, {
    epochs,
    adversarial,
    callbacks: {
      onValidation: (v) =>
        log(`${name} epoch ${v.epoch + 1} ndcg@10 ${v.value.toFixed(4)}${v.improved ? ' *' : ''}`),
    },
    ...(state ? { start: { extraTables: state.map(cloneTable) } } : {}),
  });
  const seconds = phase.epochs.map((e) => e.seconds).sort((a, b) => a - b);
  const rates = phase.epochs.map((e) => e.triplesPerSecond).sort((a, b) => a - b);
  return {
    record: {
      engine: engine.description,
      epochsRun: phase.epochs.length,
      bestEpoch: phase.bestEpoch + 1,
      bestValidationNdcg10: phase.bestValue,
      medianSecondsPerEpoch: seconds[seconds.length >> 1] ?? null,
      medianTriplesPerSecond: Math.round(rates[rates.length >> 1] ?? 0),
      seconds: (performance.now() - started) / 1000,
    },
    state: optimizerState,
  };
}

/** FGM and random noise on every NeuMF embedding table at test time, relative HR@10 and NDCG@10 changes. */
async function neumfRobustness(
  model: Model,
  dataset: Dataset,
  surfaces: readonly string[],
  testSet: SampledTestSet,
) {
  const sweep = await robustnessSweep(model, dataset, {
    epsilons: [0.05, 0.5],
    adversaries: ['fgm', 'random'],
    surfaces,
    cutoffs: [10],
    metrics: ['hr', 'ndcg'],
    seed: 7,
    testSet,
  });
  return sweep.points.map((p) => ({
    adversary: p.adversary,
    epsilon: p.epsilon,
    ndcg10Change: p.relativeChange['ndcg@10'],
    hr10Change: p.relativeChange['hr@10'],
  }));
}

async function runNeuMF(context: BenchContext): Promise<Record<string, unknown>> {
  const { sharedData, log } = context;
  const o = context.options as DeepOptions;
  const directory = await mkdtemp(join(tmpdir(), 'advrec-quality-deep-'));
  try {
    const dataset = await movieLens1M(sharedData, directory);
    const testSet = generateSampledTestSet(dataset, { negatives: 100, seed: SEED + 1 });
    const evaluate = (model: Model): Promise<EvaluationResult> =>
      evaluateSampled(model as Parameters<typeof evaluateSampled>[0], dataset, testSet, {
        cutoffs: [10],
        metrics: ['hr', 'ndcg'],
      });
    const base: TrainConfig = {
      seed: 1,
      batchSize: 512,
      optimizer: { name: 'adagrad', learningRate: 0.05 },
      validation: { every: 2, metric: 'ndcg@10', patience: 3, users: 1500 },
    };
    const stage = (
      name: string,
      model: Model,
      config: TrainConfig,
      epochs: number,
      adversarial: boolean,
      state?: readonly ParameterTable[],
    ) =>
      trainedStage(dataset, log, {
        name,
        model,
        config,
        epochs,
        adversarial,
        ...(state ? { state } : {}),
      });
    const k = 8;
    const neumf = new NeuralMatrixFactorization(dataset, { embeddingSize: k, seed: 1 });
    const pretrained = await stage('neumf', neumf, base, o.neumfEpochs, false);
    const pretrainedResult = await evaluate(neumf);
    log(
      `neumf: ${JSON.stringify(pretrained.record)} test ${JSON.stringify(pretrainedResult.metrics)}`,
    );
    const copy = (): NeuralMatrixFactorization =>
      new NeuralMatrixFactorization(neumf, neumf.resolved, neumf.tables.map(cloneTable));
    const continueEpochs = o.neumfContinueEpochs;
    // The continuations run every epoch to the end (no early stop): same epochs for all.
    const continuation: TrainConfig = {
      ...base,
      validation: { ...base.validation, patience: 1000 },
    };
    const surfaces = neumf.surfaces.map((s) => s.name);
    const robustness = (model: Model) => neumfRobustness(model, dataset, surfaces, testSet);
    const continued = copy();
    const continuedRun = await stage(
      'neumf continued',
      continued,
      continuation,
      continueEpochs,
      false,
      pretrained.state,
    );
    const continuedResult = await evaluate(continued);
    const models: Record<string, unknown> = {
      'NeuMF (BPR)': {
        ...pretrained.record,
        test: pretrainedResult.metrics,
        robustness: await robustness(neumf),
      },
      'NeuMF continued': {
        ...continuedRun.record,
        test: continuedResult.metrics,
        robustness: await robustness(continued),
      },
    };
    log(`neumf continued: ${JSON.stringify(models['NeuMF continued'])}`);
    const epsilons = o.neumfEpsilons;
    for (const epsilon of epsilons) {
      const name = `APR on NeuMF (eps ${epsilon})`;
      const apr = copy();
      const run = await stage(
        name,
        apr,
        {
          ...continuation,
          adversarial: { adversary: 'fgm', epsilon, adversarialWeight: 1, surfaces },
        },
        continueEpochs,
        true,
        pretrained.state,
      );
      const result = await evaluate(apr);
      models[name] = {
        ...run.record,
        test: result.metrics,
        versusContinued: Object.fromEntries(
          ['hr@10', 'ndcg@10'].map((key) => [
            key,
            {
              relativeChange: result.metrics[key]! / continuedResult.metrics[key]! - 1,
              pValue: pairedTTest(result.perUser[key]!, continuedResult.perUser[key]!).pValue,
            },
          ]),
        ),
        robustness: await robustness(apr),
      };
      log(`${name}: ${JSON.stringify(models[name])}`);
    }
    return {
      dataset: {
        name: 'MovieLens-1M (../shared/data/ml-1m, train and test merged back)',
        users: dataset.numUsers,
        items: dataset.numItems,
        trainInteractions: dataset.train.nnz,
        testCases: testSet.numCases,
      },
      protocol:
        'leave-one-out with a random held-out item per user (the shared files have no timestamps; NCF holds out the latest), a second random item per user for validation; test: 100 sampled negatives per case (seed 2025), HR@10 and NDCG@10 (ties pessimistic); NeuMF K = 8, MLP [32, 16, 8] over 32-d MLP embeddings, BPR loss, Adagrad lr 0.05, batch 512, early stopping on validation NDCG@10 (full ranking of 1,500 sampled users, every 2 epochs, patience 3); continuations from the best checkpoint with its Adagrad state, the same epochs, no early stop; APR: FGM on the four embedding tables, lambda 1',
      publishedComparison:
        "NCF (He et al., WWW 2017) reports NeuMF on ML-1M at HR@10 about 0.70-0.73 and NDCG@10 about 0.42-0.45 (8 to 64 predictive factors, log loss with 4 negatives, MF pre-training); those figures are recalled, not in ../shared/papers. Their test item is each user's latest interaction, which is harder to predict than a random one from the same history (the future is not in train), so our random hold-out should score higher at equal model quality; we also train with BPR and without pre-training",
      models,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

const SEQUENTIAL_PROTOCOL =
  "Amazon Games as preprocessed for the SASRec paper (../shared/data/amazon-games-sasrec/Video.txt, lines in time order per user); each user's last item is the test item, the one before it the validation item, the rest is training; each target is ranked against 100 items the user never interacted with, sampled uniformly (seeds 2025 validation, 2026 test); HR@10 and NDCG@10 over the 30,901 users with a test item (112 users have fewer than 3 items and stay in training; the paper's code samples 10,000 users when there are more), ties pessimistic. Training: next-item binary cross-entropy at every position with one sampled negative, Adam lr 0.001, beta2 0.98, batch 128 sequences, batches grouped by length and cut to their longest row (right-aligned positions: the same outputs as padding to 50), validation every 5 epochs with patience 3, the best epoch kept. SASRec: d 50, 2 blocks, 1 head, max length 50, dropout 0.5 (the paper's Games settings). GRU4Rec: d 64, hidden 64, embedding dropout 0.3, the same next-item loss. Continuations from the best checkpoint with its Adam state, the same epochs: the model continued, and ATSRec (FGM per item row on the item embeddings, epsilon from the grid {0.1, 0.5} x the trained model's mean item-row norm, chosen on validation NDCG@10, lambda 1). Robustness: FGM on the item embeddings (gradient of the training loss over one pass, per row) at test time, epsilon {0.25, 0.5, 1} x the mean item-row norm; SASRec's passes on its hand-written kernel (onnxruntime products, 2 worker threads, chunks of 64 sequences; `engine` in each training record), GRU4Rec's on tfjs autodiff (wasm backend, one thread), the FGM attack's gradient pass on tfjs";

const PUBLISHED_SASREC =
  'SASRec paper (Kang and McAuley, ICDM 2018, Table III) on Games: Hit@10 0.7410, NDCG@10 0.5360, trained up to 200 epochs with the same protocol (as ../shared/data/amazon-games-sasrec/README.md states).';

async function runSequentialChild(
  model: 'sasrec' | 'gru4rec',
  file: string,
  directory: string,
  settings: SequentialQualitySettings,
): Promise<Record<string, unknown>> {
  const out = join(directory, `${model}.json`);
  const script = join(
    dirname(fileURLToPath(import.meta.url)),
    '..',
    'lib',
    'sequential-quality.ts',
  );
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, script, model, file, out, JSON.stringify(settings)],
      {
        stdio: 'inherit',
      },
    );
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${model} run exited with ${code}`)),
    );
  });
  return JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown>;
}

export async function run(context: BenchContext): Promise<Record<string, unknown>> {
  const o = context.options as DeepOptions;
  const parts = o.parts;
  const settings: SequentialQualitySettings = {
    epochs: o.seqEpochs,
    continueEpochs: o.seqContinueEpochs,
    atsrecEpsilons: o.atsrecEpsilons,
    attackEpsilons: o.seqAttackEpsilons,
    gru4recAtsrec: o.gru4recAtsrec,
  };
  const previous = await previousResults('quality-deep');
  const carried = (section: unknown) => carriedOver(previous, section);
  const directory = await mkdtemp(join(tmpdir(), 'advrec-quality-deep-seq-'));
  try {
    const file = join(context.sharedData, 'amazon-games-sasrec', 'Video.txt');
    const sequentialModels = (['sasrec', 'gru4rec'] as const).filter((m) => parts.includes(m));
    const runs = await Promise.all(
      sequentialModels.map((m) => runSequentialChild(m, file, directory, settings)),
    );
    const sequential: Record<string, unknown> = {
      dataset:
        'Amazon Games (SASRec preprocessing): 31,013 users, 23,715 items, 287,107 interactions',
      protocol: SEQUENTIAL_PROTOCOL,
      publishedComparison: PUBLISHED_SASREC,
    };
    for (const m of ['sasrec', 'gru4rec'] as const) {
      const k = sequentialModels.indexOf(m as never);
      sequential[m] =
        k >= 0
          ? runs[k]
          : carried((previous?.results?.sequential as Record<string, unknown> | undefined)?.[m]);
    }
    const neumf = parts.includes('neumf')
      ? await runNeuMF(context)
      : carried(
          Object.fromEntries(
            Object.entries(previous?.results ?? {}).filter(([key]) => key !== 'sequential'),
          ),
        );
    return { ...neumf, sequential };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
