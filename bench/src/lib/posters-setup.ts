/**
 * What the ML-1M posters studies share (`vbpr-tuning`, `amr-diagnosis`): the AMR protocol's
 * data set on a fraction of the users with its poster features, sampled test set and cold
 * flags, and a training stage that can start from another stage's optimiser state.
 */
import { generateSampledTestSet } from '@advrec/data';
import { evaluateSampled, pairedTTest } from '@advrec/metrics';
import type { EvaluationResult } from '@advrec/metrics';
import type { Dataset, SampledTestSet } from '@advrec/data';
import { ITEM_FEATURES, MatrixFactorization, VisualBPR, cloneTable } from '@advrec/models';
import type { Model, ParameterTable } from '@advrec/models';
import { trainStage as runStage } from '@advrec/trainer';
import type { TrainConfig } from '@advrec/trainer';
import { buildDataset, posterFeatures } from '../quality/quality-ml1m-posters.js';

export const env = (name: string, fallback: number): number =>
  Number(process.env[name] ?? fallback);

/** The posters data set, its MobileNetV2 features, the test set (999 negatives) and cold flags. */
export async function postersSetup(
  sharedData: string,
  directory: string,
  fraction: number,
  log: (line: string) => void,
): Promise<{
  dataset: Dataset;
  poster: Awaited<ReturnType<typeof posterFeatures>>;
  testSet: SampledTestSet;
  cold: Uint8Array;
  coldItems: Int32Array;
  coldCases: boolean[];
  /** What the bench JSONs record of the data set. */
  summary: Record<string, unknown>;
  /** HR@10 and NDCG@10 on the sampled test set. */
  evaluateAtTen: (model: Model) => Promise<EvaluationResult>;
}> {
  const dataset = await buildDataset(sharedData, directory, fraction);
  const poster = await posterFeatures(sharedData, dataset, log);
  const testSet = generateSampledTestSet(dataset, { negatives: 999, seed: 2024 });
  const cold = new Uint8Array(dataset.numItems);
  for (const i of dataset.coldStartItems) cold[i] = 1;
  const coldItems = Int32Array.from(dataset.coldStartItems);
  const coldCases = Array.from(testSet.positives, (i) => cold[i] === 1);
  log(
    `${dataset.numUsers} users, ${dataset.numItems} items, ${dataset.train.nnz} train, ${testSet.numCases} test cases (${coldCases.filter(Boolean).length} cold)`,
  );
  const summary = {
    name: dataset.name,
    users: dataset.numUsers,
    items: dataset.numItems,
    train: dataset.train.nnz,
    userFraction: fraction,
    testCases: testSet.numCases,
    coldStartTestCases: coldCases.filter(Boolean).length,
  };
  const evaluateAtTen = (model: Model): Promise<EvaluationResult> =>
    evaluateSampled(model as Parameters<typeof evaluateSampled>[0], dataset, testSet, {
      cutoffs: [10],
      metrics: ['hr', 'ndcg'],
    });
  return { dataset, poster, testSet, cold, coldItems, coldCases, summary, evaluateAtTen };
}

/** A stage's record (1-based best epoch, median seconds an epoch) and its optimiser state. */
export interface StageRun {
  readonly record: Record<string, unknown>;
  readonly state: ParameterTable[];
}

/**
 * Trains `model` for up to `epochs` (BPR, or adversarial), logging each validation, starting
 * from a copy of `state` (another stage's optimiser tables) when given.
 */
export async function trainStage(
  dataset: Dataset,
  log: (line: string) => void,
  name: string,
  model: Model,
  config: TrainConfig,
  epochs: number,
  options: { adversarial?: boolean; state?: readonly ParameterTable[] } = {},
): Promise<StageRun> {
  const started = performance.now();
  const { phase, optimizerState } = await runStage(model, dataset, config, {
    epochs,
    adversarial: options.adversarial ?? false,
    callbacks: {
      onValidation: (v) =>
        log(`${name} epoch ${v.epoch + 1} ndcg@20 ${v.value.toFixed(4)}${v.improved ? ' *' : ''}`),
    },
    ...(options.state ? { start: { extraTables: options.state.map(cloneTable) } } : {}),
  });
  const seconds = phase.epochs.map((e) => e.seconds).sort((a, b) => a - b);
  return {
    record: {
      epochsRun: phase.epochs.length,
      bestEpoch: phase.bestEpoch + 1,
      bestValidationNdcg20: phase.bestValue,
      medianSecondsPerEpoch: seconds[Math.floor(seconds.length / 2)] ?? null,
      curve: phase.validations.map((v) => ({ epoch: v.epoch + 1, value: v.value })),
      seconds: (performance.now() - started) / 1000,
    },
    state: optimizerState,
  };
}

/** Compares a result's test HR/NDCG@10 with `reference`'s (relative change, paired t-test). */
export function versus(
  reference: EvaluationResult,
): (result: EvaluationResult) => Record<string, { relativeChange: number; pValue: number }> {
  return (result) =>
    Object.fromEntries(
      ['hr@10', 'ndcg@10'].map((key) => [
        key,
        {
          relativeChange: result.metrics[key]! / reference.metrics[key]! - 1,
          pValue: pairedTTest(result.perUser[key]!, reference.perUser[key]!).pValue,
        },
      ]),
    );
}

/**
 * The AMR studies' common start (`amr-grid`, `amr-scaled`): MF-BPR (L2 1e-4, validation
 * NDCG@20 every 5 epochs, patience 4), VBPR from it (128 principal components) with MF's
 * Adagrad state, then VBPR continued for `epochs` from VBPR's parameters and state, evaluated
 * on test. `copy()` gives another arm starting from VBPR (the feature table shared), and
 * `versusContinued` compares an arm's test HR/NDCG@10 with VBPR continued's (paired t-test).
 */
export async function vbprChainStart(
  setup: Awaited<ReturnType<typeof postersSetup>>,
  log: (line: string) => void,
  epochs: number,
): Promise<{
  base: TrainConfig;
  mfRun: StageRun;
  vbpr: VisualBPR;
  vbprRun: StageRun;
  continued: VisualBPR;
  continuedRun: StageRun;
  reference: EvaluationResult;
  copy: () => VisualBPR;
  versusContinued: (
    result: EvaluationResult,
  ) => Record<string, { relativeChange: number; pValue: number }>;
}> {
  const { dataset, poster, evaluateAtTen } = setup;
  const validation = { every: 5, metric: 'ndcg@20', patience: 4 } as const;
  const base: TrainConfig = { seed: 1, batchSize: 512, l2: 0.0001, validation };
  const mf = new MatrixFactorization(dataset, { embeddingSize: 64, seed: 1 });
  const mfRun = await trainStage(dataset, log, 'mf', mf, base, env('ADVREC_MF_EPOCHS', 200));
  const vbpr = VisualBPR.fromMatrixFactorization(
    mf,
    { data: poster.data, dimension: poster.dimension },
    { seed: 1, featureComponents: 128 },
    dataset.train,
  );
  const vbprRun = await trainStage(
    dataset,
    log,
    'vbpr',
    vbpr,
    base,
    env('ADVREC_VBPR_EPOCHS', 20),
    {
      state: mfRun.state,
    },
  );
  const copy = (): VisualBPR =>
    new VisualBPR(dataset, null, vbpr.config, {
      tables: vbpr.tables.map((t) => (t.name === ITEM_FEATURES ? t : cloneTable(t))),
    });
  const continued = copy();
  const continuedRun = await trainStage(dataset, log, 'vbpr continued', continued, base, epochs, {
    state: vbprRun.state,
  });
  const reference = await evaluateAtTen(continued);
  const versusContinued = versus(reference);
  return { base, mfRun, vbpr, vbprRun, continued, continuedRun, reference, copy, versusContinued };
}
