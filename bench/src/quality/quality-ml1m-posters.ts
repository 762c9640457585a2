/**
 * `pnpm bench quality-ml1m-posters`: the AMR experiment on MovieLens-1M with real poster
 * features (the shared MobileNetV2, tensor 627 pooled to 1280-d; extracted once and cached
 * in bench/.cache). Leave-one-out (random, seeded) over the shared train+test files, with a
 * seeded 10% of movies held out of training entirely (cold-start test items, scored by
 * their features alone); validation carved from train for early stopping and tuning; the
 * AMR protocol on test (the test item among 999 sampled negatives, HR and NDCG at 5, 10,
 * 20). The experiment is the library's `runAmrExperiment` with its defaults (VBPR's
 * feature preparation and item-ID dropout, Adagrad state carried between stages, AMR's
 * epsilon relative to the prepared features' row norm, chosen on validation from a grid):
 * ItemPop, MF-BPR, VBPR (initialised from MF), AMR versus VBPR continued for as many epochs,
 * paired t-tests on all, warm and cold-start cases, cold items ranked among cold items, and
 * the robustness of VBPR continued and AMR to adversarial and random perturbations of the
 * image features (AMR Table 3 and Figure 5). VBPR works on the features' 128 principal
 * components (the same accuracy as the 1280-d features at half the epoch, `vbpr-tuning`),
 * and AMR's epsilon and lambda are tuned on validation over the AMR paper's grid (as
 * `advrec reproduce amr --tune`). Environment: ADVREC_USER_FRACTION (1),
 * ADVREC_MF_EPOCHS (200), ADVREC_VBPR_EPOCHS (20), ADVREC_AMR_EPOCHS (10),
 * ADVREC_FEATURE_COMPONENTS (128; 0 for the CNN's own features), ADVREC_AMR_EPSILONS (unset:
 * the paper's grid; else these epsilons at lambda 1), ADVREC_SWEEP_EPSILONS (0.1,0.5,1,2),
 * ADVREC_VALIDATE_EVERY (5).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  alignItemFeatures,
  generateSampledTestSet,
  givenSplit,
  holdOutValidation,
  leaveOneOut,
  Random,
  readFeatureMatrix,
  readUserItemLists,
} from '@advrec/data';
import type { Dataset, IdMap, SampledTestSet } from '@advrec/data';
import { extractFeatures } from '@advrec/features';
import type { FeatureManifest } from '@advrec/features';
import { evaluateSampled, pairedTTest, robustnessSweep } from '@advrec/metrics';
import type { EvaluationResult } from '@advrec/metrics';
import { defaultFeatureNorm } from '@advrec/models';
import type { Model, VisualBPRConfig } from '@advrec/models';
import { runAmrExperiment } from '@advrec/trainer';
import type { PhaseResult, TrainConfig } from '@advrec/trainer';
import type { BenchAbout, BenchContext, BenchOptionSpec, BenchOptionValues } from '../context.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
export const about: BenchAbout = {
  kind: 'quality',
  what: "AMR on MovieLens-1M with real poster features, the library's `runAmrExperiment` with its defaults: random leave-one-out, 10% of movies cold, AMR protocol (999 sampled negatives, HR/NDCG at 5, 10, 20, AUC): ItemPop, MF-BPR, VBPR (from MF, on the features' 128 principal components), AMR (epsilon and lambda tuned on validation over the AMR paper's grid, as `reproduce amr --tune`) vs VBPR continued; all, warm and cold cases, cold among cold; feature robustness (Table 3, relative epsilons)",
  figures:
    '`test` (all / warm / cold / cold among cold), `comparisons` (p-values on all, warm, cold), `robustness`, `robustnessDropNdcg10AtFgm`, `training` curves',
};

const SEED = 2024;
const CUTOFFS = [5, 10, 20];
const sourceIds = (map: IdMap): string[] =>
  Array.from({ length: map.size }, (_, i) => map.toSource(i));

/** The AMR protocol's data set (exported for the VBPR diagnosis, which may keep a fraction of users). */
export async function buildDataset(
  sharedData: string,
  directory: string,
  userFraction = 1,
): Promise<Dataset> {
  // The shared files are one train/test split: merge them back, then split our own way.
  const lists = new Map<string, string[]>();
  for (const file of ['train.txt', 'test.txt'])
    for (const line of (await readFile(join(sharedData, 'ml-1m', file), 'utf8')).split('\n')) {
      const [user, ...items] = line.trim().split(/\s+/);
      if (!user) continue;
      lists.set(user, [...(lists.get(user) ?? []), ...items]);
    }
  if (userFraction < 1) {
    const keep = new Random(SEED + 1);
    for (const user of [...lists.keys()]) if (keep.nextFloat() >= userFraction) lists.delete(user);
  }
  const allFile = join(directory, 'all.txt');
  await writeFile(
    allFile,
    [...lists].map(([u, items]) => `${u} ${items.join(' ')}`).join('\n') + '\n',
  );
  const log = await readUserItemLists(allFile);
  const split = leaveOneOut(log, { order: 'random', seed: SEED });
  // A seeded 10% of movies leave training entirely: their test cases are cold-start items.
  const random = new Random(SEED);
  const held = new Set<number>();
  const order = Int32Array.from({ length: split.numItems }, (_, i) => i);
  random.shuffle(order);
  for (let k = 0; k < Math.round(0.1 * split.numItems); k++) held.add(order[k]!);
  const write = async (
    file: string,
    rows: (u: number) => Int32Array,
    keep: (i: number) => boolean,
  ) => {
    const lines: string[] = [];
    for (let u = 0; u < split.numUsers; u++) {
      const items = [...rows(u)].filter(keep).map((i) => split.itemIdMap.toSource(i));
      if (items.length > 0) lines.push(`${split.userIdMap.toSource(u)} ${items.join(' ')}`);
    }
    await writeFile(file, lines.join('\n') + '\n');
  };
  await write(
    join(directory, 'train.txt'),
    (u) => split.train.row(u),
    (i) => !held.has(i),
  );
  await write(
    join(directory, 'test.txt'),
    (u) => split.test.row(u),
    () => true,
  );
  const dataset = givenSplit(
    await readUserItemLists(join(directory, 'train.txt')),
    await readUserItemLists(join(directory, 'test.txt')),
    {
      extraItems: sourceIds(split.itemIdMap),
      name: 'ml-1m (random leave-one-out, 10% of movies cold)',
    },
  );
  return holdOutValidation(dataset, { order: 'random', seed: SEED });
}

/** Each metric's mean over the test cases whose `coldCases` flag is `wantCold` (NaN for none). */
export function meanOverCases(
  result: EvaluationResult,
  coldCases: readonly boolean[],
  wantCold: boolean,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, values] of Object.entries(result.perUser)) {
    let s = 0;
    let n = 0;
    values.forEach((v, c) => {
      if (coldCases[c] === wantCold) {
        s += v;
        n++;
      }
    });
    out[key] = n > 0 ? s / n : Number.NaN;
  }
  return out;
}

/** MobileNetV2 poster features aligned to the data set's items (extracted once, cached). */
export async function posterFeatures(
  sharedData: string,
  dataset: Dataset,
  log: (line: string) => void,
  tensor = '627',
): Promise<{ data: Float32Array; dimension: number; missing: number; manifest: FeatureManifest }> {
  const cache = join(import.meta.dirname, '..', '.cache');
  await mkdir(cache, { recursive: true });
  const output = join(cache, `ml1m-posters-mobilenetv2-${tensor}.npy`);
  const manifestFile = `${output}.manifest.json`;
  if (!existsSync(manifestFile)) {
    const posters = join(sharedData, 'ml-1m', 'posters');
    // Every poster in the folder (not only this data set's items): the cache serves any split.
    const images = (await readdir(posters))
      .filter((name) => /^\d+\.jpg$/.test(name))
      .map((name) => ({ itemId: String(Number(name.slice(0, -4)) - 1), file: join(posters, name) }))
      .sort((a, b) => Number(a.itemId) - Number(b.itemId));
    log(`extracting ${images.length} posters (cached in ${output})`);
    await extractFeatures({
      model: join(sharedData, '..', 'models', 'mobilenetv2-12-int8', 'mobilenetv2-12-int8.onnx'),
      tensor,
      images,
      output,
    });
  }
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as FeatureManifest;
  const aligned = alignItemFeatures(await readFeatureMatrix(output), dataset.itemIdMap, {
    rowIds: manifest.itemIds,
  });
  return {
    data: aligned.matrix,
    dimension: aligned.dimension,
    missing: aligned.missingItems.length,
    manifest,
  };
}

/** HR@10 of each cold test item ranked among every cold item (pessimistic ties), per case. */
export function coldAmongColdHits(
  model: Model,
  testSet: SampledTestSet,
  cold: Uint8Array,
  coldItems: Int32Array,
): number[] {
  const hits: number[] = [];
  for (let c = 0; c < testSet.numCases; c++) {
    const item = testSet.positives[c]!;
    if (cold[item] !== 1) continue;
    const scores = model.score(new Int32Array(coldItems.length).fill(testSet.users[c]!), coldItems);
    const own = scores[coldItems.indexOf(item)]!;
    let above = 0;
    for (let k = 0; k < coldItems.length; k++)
      if (coldItems[k] !== item && scores[k]! >= own) above++;
    hits.push(above < 10 ? 1 : 0);
  }
  return hits;
}

/** The recipe's settings (the benchmark's options; `quality-amr-recipe` takes the defaults). */
export interface AmrRecipeSettings {
  readonly validateEvery: number;
  /** AMR epsilons tried (relative to the prepared features' mean row norm); empty: the paper's grid. */
  readonly amrEpsilons: readonly number[];
  readonly sweepEpsilons: readonly number[];
  readonly mfEpochs: number;
  readonly vbprEpochs: number;
  readonly amrEpochs: number;
}

/** Options (`pnpm bench quality-ml1m-posters --option value`). */
export const options = {
  userFraction: { description: 'share of the users kept (seeded)', default: 1 },
  featureComponents: {
    description: "VBPR's principal components of the features (0: the CNN's own)",
    default: 128,
  },
  amrEpsilons: {
    description: "AMR epsilons tried, relative; empty: the AMR paper's epsilon and lambda grid",
    default: [] as number[],
  },
  sweepEpsilons: { description: 'robustness sweep epsilons, relative', default: [0.1, 0.5, 1, 2] },
  validateEvery: { description: 'validate every this many epochs', default: 5 },
  mfEpochs: { description: 'most MF-BPR epochs', default: 200 },
  vbprEpochs: { description: 'most VBPR epochs', default: 20 },
  amrEpochs: { description: 'epochs of AMR and VBPR continued', default: 10 },
} satisfies BenchOptionSpec;

/** The recipe's settings by default. */
export const AMR_RECIPE_DEFAULTS: AmrRecipeSettings = {
  validateEvery: options.validateEvery.default,
  amrEpsilons: [0.1, 1],
  sweepEpsilons: options.sweepEpsilons.default,
  mfEpochs: options.mfEpochs.default,
  vbprEpochs: options.vbprEpochs.default,
  amrEpochs: options.amrEpochs.default,
};

export async function run(context: BenchContext): Promise<Record<string, unknown>> {
  const { sharedData, log } = context;
  const o = context.options as BenchOptionValues<typeof options>;
  const directory = await mkdtemp(join(tmpdir(), 'advrec-ml1m-'));
  try {
    const fraction = o.userFraction;
    const dataset = await buildDataset(sharedData, directory, fraction);
    const features = await posterFeatures(sharedData, dataset, log);
    const components = o.featureComponents;
    return await amrRecipe(dataset, features, {
      log,
      userFraction: fraction,
      // 128 principal components: the same accuracy as the 1280-d features at half the VBPR
      // epoch (vbpr-tuning); 0 keeps the CNN's own features.
      ...(components > 0 ? { vbpr: { featureComponents: components } } : {}),
      // The AMR paper's epsilon and lambda grid, unless --amr-epsilons names epsilons.
      ...(o.amrEpsilons.length > 0 ? {} : { grid: 'paper' as const }),
      settings: {
        validateEvery: o.validateEvery,
        amrEpsilons: o.amrEpsilons,
        sweepEpsilons: o.sweepEpsilons,
        mfEpochs: o.mfEpochs,
        vbprEpochs: o.vbprEpochs,
        amrEpochs: o.amrEpochs,
      },
      protocol:
        'random leave-one-out (seed 2024) over the shared train+test files; 10% of movies (seeded) removed from training; one random training interaction per user held out for validation; test item among 999 sampled negatives (cold items included, as in the paper); cold-among-cold: each cold test item ranked among all cold items',
      features: {
        model: features.manifest.model,
        tensor: features.manifest.tensor,
        pooling: features.manifest.pooling,
        dimension: features.dimension,
        itemsWithoutPoster: features.missing,
        failedImages: features.manifest.failed,
      },
    });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** The robustness sweeps with relative epsilons, and FGM's NDCG@10 drop of AMR over VBPR continued. */
function robustnessRecord(
  experiment: Awaited<ReturnType<typeof runAmrExperiment>>,
  rowNorm: number,
  sweepEpsilons: readonly number[],
  continuedName: string,
  amrName: string,
) {
  const robustness = Object.fromEntries(
    experiment.robustness.map(({ name, report }) => [
      name,
      {
        ...report,
        points: report.points.map((p) => ({ ...p, relativeEpsilon: p.epsilon / rowNorm })),
      },
    ]),
  );
  const drop = (name: string, epsilon: number) =>
    experiment.robustness
      .find((r) => r.name === name)!
      .report.points.find(
        (p) => p.adversary === 'fgm' && Math.abs(p.epsilon / rowNorm - epsilon) < 1e-9,
      )?.relativeChange['ndcg@10'] ?? Number.NaN;
  const dropRatios = Object.fromEntries(
    sweepEpsilons.map((e) => [
      String(e),
      {
        vbprContinued: drop(continuedName, e),
        amr: drop(amrName, e),
        amrOverVbpr: drop(amrName, e) / drop(continuedName, e),
      },
    ]),
  );
  return { robustness, dropRatios };
}

/** A phase's epochs, best epoch, validation curve and median epoch time. */
function phaseSummary(p: PhaseResult | null) {
  return (
    p && {
      epochsRun: p.epochs.length,
      bestEpoch: p.bestEpoch,
      bestValidationNdcg20: p.bestValue,
      medianSecondsPerEpoch: [...p.epochs.map((e) => e.seconds)].sort((a, b) => a - b)[
        p.epochs.length >> 1
      ],
      curve: p.validations.map((v) => ({ epoch: v.epoch, value: v.value })),
    }
  );
}

/** Per arm: metrics on all, warm and cold-start cases, and HR@10 of cold items among cold items. */
function caseTable(
  experiment: Awaited<ReturnType<typeof runAmrExperiment>>,
  names: readonly string[],
  results: Record<string, EvaluationResult>,
  subset: (result: EvaluationResult, wantCold: boolean) => Record<string, number>,
  testSet: SampledTestSet,
  cold: Uint8Array,
  coldItems: Int32Array,
) {
  const coldAmongCold = Object.fromEntries(
    experiment.arms.map((arm) => {
      const hits = coldAmongColdHits(arm.model, testSet, cold, coldItems);
      return [arm.name, hits.reduce((a, b) => a + b, 0) / Math.max(1, hits.length)];
    }),
  );
  const chanceAmongCold = Math.min(1, 10 / Math.max(1, coldItems.length));
  const table = Object.fromEntries(
    names.map((name) => [
      name,
      {
        all: results[name]!.metrics,
        warmCases: subset(results[name]!, false),
        coldStartCases: subset(results[name]!, true),
        coldAmongColdHr10: coldAmongCold[name],
      },
    ]),
  );
  return { table, chanceAmongCold };
}

/** Paired comparisons of two arms on all, warm and cold-start test cases. */
function coldSplitComparisons(
  results: Record<string, EvaluationResult>,
  coldCases: readonly boolean[],
) {
  const subset = (result: EvaluationResult, wantCold: boolean): Record<string, number> =>
    meanOverCases(result, coldCases, wantCold);
  const onCases = (result: EvaluationResult, wantCold: boolean): EvaluationResult => ({
    ...result,
    perUser: Object.fromEntries(
      Object.entries(result.perUser).map(([key, values]) => [
        key,
        Float64Array.from(values.filter((_, c) => coldCases[c] === wantCold)),
      ]),
    ),
    metrics: subset(result, wantCold),
  });
  const compare = (a: EvaluationResult, b: EvaluationResult) =>
    Object.fromEntries(
      Object.keys(a.metrics).map((key) => {
        const t = pairedTTest(a.perUser[key]!, b.perUser[key]!);
        return [
          key,
          {
            relativeImprovement: (a.metrics[key]! - b.metrics[key]!) / b.metrics[key]!,
            pValue: t.pValue,
            t: t.t,
          },
        ];
      }),
    );
  const coldCount = coldCases.filter(Boolean).length;
  const onAll = (a: string, b: string) => ({
    all: compare(results[a]!, results[b]!),
    warm: compare(onCases(results[a]!, false), onCases(results[b]!, false)),
    // A paired test needs two cases at least (the synthetic set may have a single cold one).
    cold: coldCount >= 2 ? compare(onCases(results[a]!, true), onCases(results[b]!, true)) : null,
  });
  return { subset, onAll };
}

/** The recipe's configuration as the result JSON records it. */
function recipeConfigRecord(
  chain: Awaited<ReturnType<typeof runAmrExperiment>>['chain'],
  grid: 'paper' | undefined,
  amrEpsilons: readonly number[],
  validateEvery: number,
  maxEpochs: { readonly mf: number; readonly vbpr: number; readonly amr: number },
) {
  const vbprConfig = chain.vbpr.config;
  return {
    embeddingSize: 64,
    batchSize: 512,
    optimizer: 'adagrad lr 0.05, initial accumulator 0.1, state carried between stages',
    l2: 0,
    vbpr: Object.fromEntries(
      Object.entries(vbprConfig).filter(
        ([key]) => !['featureMean', 'featureBasisMean'].includes(key),
      ),
    ),
    vbprModel: 'AMR Eq. 4: y_ui = p_u . (q_i + E c_i), P and Q from the best MF (cold items Q = 0)',
    continuation: "both arms from VBPR's best parameters and Adagrad state, same epochs",
    maxEpochs: { ...maxEpochs, vbprContinued: maxEpochs.amr },
    amrSurfaces: ['itemFeatures'],
    amrTuning: grid
      ? 'the AMR paper: lambda 1 and epsilon in {0.01, 0.1, 1, 10}, then lambda in {0.01, 0.1, 1, 10} at the best epsilon, a best boundary value extended one step'
      : `epsilon in {${amrEpsilons.join(', ')}} at lambda 1`,
    amrArmsTried: chain.amrRuns.map((r) => ({
      epsilon: r.epsilon,
      adversarialWeight: r.adversarialWeight,
    })),
    amrEpsilonChosenOnValidation: chain.chosenEpsilon,
    amrAdversarialWeightChosenOnValidation: chain.chosenAdversarialWeight,
    epsilonUnit: 'relative to the prepared features mean row norm',
    earlyStopping: `best validation ndcg@20 (full ranking) every ${validateEvery} epochs, patience 4`,
  };
}

/**
 * The AMR recipe as every user gets it (`runAmrExperiment` with the library defaults) on a
 * data set with a validation split and item features: the test item among 999 sampled
 * negatives, all / warm / cold-start cases, cold among cold, paired t-tests and the feature
 * robustness sweep. Shared by the ML-1M poster benchmark and `quality-amr-recipe`.
 */
export async function amrRecipe(
  dataset: Dataset,
  features: { readonly data: Float32Array; readonly dimension: number },
  info: {
    readonly log: (line: string) => void;
    readonly userFraction?: number;
    readonly protocol: string;
    readonly features: Record<string, unknown>;
    /** VBPR's options (default the library's). */
    readonly vbpr?: VisualBPRConfig;
    /** `paper`: the AMR paper's epsilon and lambda grid instead of the epsilons listed. */
    readonly grid?: 'paper';
    /** Epochs (defaults: the settings'). */
    readonly epochs?: { readonly mf: number; readonly vbpr: number; readonly amr: number };
    /** Validation cadence, epsilons and epochs (default {@link AMR_RECIPE_DEFAULTS}). */
    readonly settings?: AmrRecipeSettings;
  },
): Promise<Record<string, unknown>> {
  const { log } = info;
  const settings = info.settings ?? AMR_RECIPE_DEFAULTS;
  const testSet = generateSampledTestSet(dataset, { negatives: 999, seed: SEED });
  const cold = new Uint8Array(dataset.numItems);
  for (const i of dataset.coldStartItems) cold[i] = 1;
  const coldItems = Int32Array.from(dataset.coldStartItems);
  const coldCases = Array.from(testSet.positives, (i) => cold[i] === 1);
  log(
    `${dataset.numUsers} users, ${dataset.numItems} items, ${dataset.train.nnz} train, ${testSet.numCases} test cases (${coldCases.filter(Boolean).length} on cold-start items), features ${features.dimension}-d`,
  );
  const validation = {
    every: settings.validateEvery,
    metric: 'ndcg@20',
    patience: 4,
  } as const;
  const train: TrainConfig = { seed: 1, batchSize: 512, l2: 0, validation };
  // The prepared features' mean row norm, the unit of every epsilon (1/sqrt(D), D after PCA).
  const rowNorm = defaultFeatureNorm(info.vbpr?.featureComponents ?? features.dimension);
  const amrEpsilons = settings.amrEpsilons;
  const sweepEpsilons = settings.sweepEpsilons;
  const maxEpochs = {
    mf: info.epochs?.mf ?? settings.mfEpochs,
    vbpr: info.epochs?.vbpr ?? settings.vbprEpochs,
    amr: info.epochs?.amr ?? settings.amrEpochs,
  };
  const started = performance.now();
  const experiment = await runAmrExperiment(dataset, {
    features: { data: features.data, dimension: features.dimension },
    embeddingSize: 64,
    modelSeed: 1,
    train,
    mfEpochs: maxEpochs.mf,
    vbprEpochs: maxEpochs.vbpr,
    amrEpochs: maxEpochs.amr,
    ...(info.vbpr ? { vbpr: info.vbpr } : {}),
    ...(info.grid ? { grid: info.grid } : { epsilons: amrEpsilons }),
    adversarialWeight: 1,
    // AUC too: where a cold item ranks among the 999 negatives even outside the top 20.
    evaluate: (model) =>
      evaluateSampled(model as Parameters<typeof evaluateSampled>[0], dataset, testSet, {
        cutoffs: CUTOFFS,
        metrics: ['hr', 'ndcg', 'auc'],
      }),
    // AMR Table 3 / Figure 5: epsilons relative to the prepared features' mean row norm.
    attack: (model) =>
      robustnessSweep(model, dataset, {
        epsilons: sweepEpsilons.map((e) => e * rowNorm),
        adversaries: ['fgm', 'random'],
        surfaces: ['itemFeatures'],
        testSet,
        cutoffs: CUTOFFS,
        metrics: ['hr', 'ndcg'],
        seed: 5,
      }),
    callbacks: (stage) => ({
      onValidation: (v) =>
        log(`${stage} epoch ${v.epoch} ndcg@20 ${v.value.toFixed(4)}${v.improved ? ' *' : ''}`),
    }),
  });
  const chain = experiment.chain;
  const results = Object.fromEntries(experiment.test);
  const names = experiment.test.map(([name]) => name);
  const [itemPopName, mfName, vbprName, continuedName, amrName] = names as [
    string,
    string,
    string,
    string,
    string,
  ];
  const { subset, onAll } = coldSplitComparisons(results, coldCases);
  const { table, chanceAmongCold } = caseTable(
    experiment,
    names,
    results,
    subset,
    testSet,
    cold,
    coldItems,
  );
  for (const name of names) log(`${name}: ${JSON.stringify(table[name])}`);
  const { robustness, dropRatios } = robustnessRecord(
    experiment,
    rowNorm,
    sweepEpsilons,
    continuedName,
    amrName,
  );
  const vbprConfig = chain.vbpr.config;
  return {
    dataset: {
      name: dataset.name,
      users: dataset.numUsers,
      items: dataset.numItems,
      train: dataset.train.nnz,
      validation: dataset.validation?.nnz ?? 0,
      testCases: testSet.numCases,
      coldStartTestCases: coldCases.filter(Boolean).length,
      coldStartItems: dataset.coldStartItems.length,
      userFraction: info.userFraction ?? 1,
      protocol: info.protocol,
    },
    features: {
      ...info.features,
      preparation: `${vbprConfig.featureComponents ? `${vbprConfig.featureComponents} principal components, ` : ''}${String(vbprConfig['featureNormalization'])}, mean row norm ${chain.vbpr.featureTransform.rowNorm.toPrecision(3)}`,
    },
    config: recipeConfigRecord(chain, info.grid, amrEpsilons, validation.every, maxEpochs),
    training: {
      mfBpr: phaseSummary(chain.phases.mf),
      vbpr: phaseSummary(chain.phases.vbpr),
      vbprContinued: phaseSummary(chain.phases.vbprContinued),
      amr: Object.fromEntries(
        chain.amrRuns.map((r) => [
          `epsilon=${r.epsilon},lambda=${r.adversarialWeight}`,
          phaseSummary(r.phase),
        ]),
      ),
    },
    test: table,
    chanceHr10: { all: 10 / 1000, coldAmongCold: chanceAmongCold },
    comparisons: {
      vbprVsMfBpr: onAll(vbprName, mfName),
      amrVsVbprContinued: onAll(amrName, continuedName),
      amrVsVbpr: onAll(amrName, vbprName),
      mfBprVsItemPop: onAll(mfName, itemPopName),
    },
    robustness,
    robustnessDropNdcg10AtFgm: dropRatios,
    seconds: (performance.now() - started) / 1000,
  };
}
