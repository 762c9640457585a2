/**
 * `pnpm bench quality-ml1m-posters`: the AMR experiment on MovieLens-1M with real poster
 * features (the shared MobileNetV2, tensor 627 pooled to 1280-d; extracted once and cached
 * in bench/.cache). Leave-one-out (random, seeded) over the shared train+test files, with a
 * seeded 10% of movies held out of training entirely (cold-start test items, scored by
 * their features alone); validation carved from train for early stopping and tuning; the
 * AMR protocol on test (the test item among 999 sampled negatives, HR and NDCG at 5, 10,
 * 20): ItemPop, MF-BPR, VBPR (initialised from MF), AMR (initialised from VBPR) versus VBPR
 * continued, paired t-tests, cold-start and warm cases separately, and the robustness of
 * VBPR and AMR to adversarial and random perturbations of the image features (AMR Table 3
 * and Figure 5).
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
import type { Dataset, IdMap } from '@advrec/data';
import { extractFeatures } from '@advrec/features';
import type { FeatureManifest } from '@advrec/features';
import { evaluateSampled, pairedTTest, robustnessSweep } from '@advrec/metrics';
import type { EvaluationResult } from '@advrec/metrics';
import {
  ItemPop,
  MatrixFactorization,
  VisualBPR,
  cloneTable,
  readCheckpoint,
} from '@advrec/models';
import type { Checkpoint, Model } from '@advrec/models';
import { Trainer } from '@advrec/trainer';
import type { PhaseResult, TrainConfig } from '@advrec/trainer';
import type { BenchContext } from './context.js';

const SEED = 2024;
const PROJECTION_INIT_STD = 0.01;
const CUTOFFS = [5, 10, 20];
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
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
): Promise<{ data: Float32Array; dimension: number; missing: number; manifest: FeatureManifest }> {
  const cache = join(import.meta.dirname, '..', '.cache');
  await mkdir(cache, { recursive: true });
  const output = join(cache, 'ml1m-posters-mobilenetv2-627.npy');
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
      tensor: '627',
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

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const directory = await mkdtemp(join(tmpdir(), 'advrec-ml1m-'));
  try {
    const dataset = await buildDataset(sharedData, directory);
    const features = await posterFeatures(sharedData, dataset, log);
    const testSet = generateSampledTestSet(dataset, { negatives: 999, seed: SEED });
    const cold = new Uint8Array(dataset.numItems);
    for (const i of dataset.coldStartItems) cold[i] = 1;
    const coldCases = Array.from(testSet.positives, (i) => cold[i] === 1);
    log(
      `${dataset.numUsers} users, ${dataset.numItems} items, ${dataset.train.nnz} train, ${testSet.numCases} test cases (${coldCases.filter(Boolean).length} on cold-start items), features ${features.dimension}-d (${features.missing} items without a poster)`,
    );
    let featureNorm = 0;
    for (let i = 0; i < dataset.numItems; i++) {
      let s = 0;
      for (let f = 0; f < features.dimension; f++)
        s += features.data[i * features.dimension + f]! ** 2;
      featureNorm += Math.sqrt(s) / dataset.numItems;
    }

    const evaluate = (model: Model): Promise<EvaluationResult> =>
      evaluateSampled(model as Parameters<typeof evaluateSampled>[0], dataset, testSet, {
        cutoffs: CUTOFFS,
        metrics: ['hr', 'ndcg'],
      });
    const subset = (result: EvaluationResult, wantCold: boolean): Record<string, number> =>
      meanOverCases(result, coldCases, wantCold);
    const validation = {
      every: env('ADVREC_VALIDATE_EVERY', 5),
      metric: 'ndcg@20',
      patience: 4,
    } as const;
    const base: TrainConfig = { seed: 1, batchSize: 512, l2: 0, validation };
    const phaseSummary = (p: PhaseResult) => ({
      epochsRun: p.epochs.length,
      bestEpoch: p.bestEpoch,
      bestValidationNdcg20: p.bestValue,
      medianSecondsPerEpoch: [...p.epochs.map((e) => e.seconds)].sort((a, b) => a - b)[
        p.epochs.length >> 1
      ],
      curve: p.validations.map((v) => ({ epoch: v.epoch, value: v.value })),
    });
    const onValidation = (name: string) => ({
      onValidation: (v: { epoch: number; value: number; improved: boolean }) =>
        log(`${name} epoch ${v.epoch} ndcg@20 ${v.value.toFixed(4)}${v.improved ? ' *' : ''}`),
      onLog: log,
    });

    // ItemPop and MF-BPR.
    const itemPop = await evaluate(new ItemPop(dataset.train));
    const mf = new MatrixFactorization(dataset, { embeddingSize: 64, seed: 1 });
    let trainer = await Trainer.create(mf, dataset, base, onValidation('mf-bpr'));
    const mfCheckpoint = join(directory, 'mf.ckpt');
    const mfPhase = await trainer.runPhase({
      epochs: env('ADVREC_MF_EPOCHS', 200),
      adversarial: false,
      checkpoint: mfCheckpoint,
    });
    await trainer.close();
    const mfResult = await evaluate(mf);
    log(`MF-BPR test ${JSON.stringify(mfResult.metrics)}`);

    // VBPR (the AMR paper's model, Eq. 4) initialised from MF's best embeddings, which keep
    // their Adagrad state; E ~ N(0, 0.01^2) over unit-norm features.
    const mfState = await readCheckpoint(mfCheckpoint);
    const vbpr = VisualBPR.fromMatrixFactorization(
      mf,
      features,
      { seed: 1, projectionInitStd: PROJECTION_INIT_STD },
      dataset.train,
    );
    const resumeFrom = (c: Checkpoint) => ({
      extraTables: c.extraTables.map(cloneTable),
      epoch: Number(c.metadata.epoch),
      step: Number(c.metadata.step),
    });
    trainer = await Trainer.create(vbpr, dataset, base, onValidation('vbpr'), resumeFrom(mfState));
    const vbprCheckpoint = join(directory, 'vbpr.ckpt');
    const vbprPhase = await trainer.runPhase({
      epochs: env('ADVREC_VBPR_EPOCHS', 25),
      adversarial: false,
      checkpoint: vbprCheckpoint,
    });
    await trainer.close();
    const vbprResult = await evaluate(vbpr);
    log(`VBPR test ${JSON.stringify(vbprResult.metrics)}`);

    // From the VBPR checkpoint (tables and Adagrad state): VBPR continued vs AMR
    // (perturbing the image features), same epochs.
    const vbprState = await readCheckpoint(vbprCheckpoint);
    const copy = (): VisualBPR =>
      VisualBPR.restore({ ...vbprState.model, tables: vbprState.model.tables.map(cloneTable) });
    const continueEpochs = env('ADVREC_AMR_EPOCHS', 20);
    const continued = copy();
    trainer = await Trainer.create(
      continued,
      dataset,
      base,
      onValidation('vbpr+'),
      resumeFrom(vbprState),
    );
    const continuedPhase = await trainer.runPhase({ epochs: continueEpochs, adversarial: false });
    await trainer.close();
    const continuedResult = await evaluate(continued);
    log(`VBPR continued test ${JSON.stringify(continuedResult.metrics)}`);
    const epsilons = (process.env.ADVREC_AMR_EPSILONS ?? '0.1').split(',').map(Number);
    const amrRuns: { epsilon: number; model: VisualBPR; phase: PhaseResult }[] = [];
    for (const epsilon of epsilons) {
      const amr = copy();
      trainer = await Trainer.create(
        amr,
        dataset,
        {
          ...base,
          adversarial: {
            adversary: 'fgm',
            epsilon,
            adversarialWeight: 1,
            surfaces: ['itemFeatures'],
          },
        },
        onValidation(`amr(eps=${epsilon})`),
        resumeFrom(vbprState),
      );
      amrRuns.push({
        epsilon,
        model: amr,
        phase: await trainer.runPhase({ epochs: continueEpochs, adversarial: true }),
      });
      await trainer.close();
    }
    const chosen = amrRuns.reduce((best, r) =>
      r.phase.bestValue > best.phase.bestValue ? r : best,
    );
    const amrResult = await evaluate(chosen.model);
    log(`AMR(eps=${chosen.epsilon}) test ${JSON.stringify(amrResult.metrics)}`);

    const results = {
      itemPop,
      mfBpr: mfResult,
      vbpr: vbprResult,
      vbprContinued: continuedResult,
      amr: amrResult,
    };
    const table = Object.fromEntries(
      Object.entries(results).map(([name, r]) => [
        name,
        { all: r.metrics, coldStartCases: subset(r, true), warmCases: subset(r, false) },
      ]),
    );
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

    // Robustness to perturbations of the image features (AMR Table 3, Figure 5).
    const sweepEpsilons = (process.env.ADVREC_SWEEP_EPSILONS ?? '0.05,0.1,0.2,0.5,1')
      .split(',')
      .map(Number);
    const sweep = (model: VisualBPR) =>
      robustnessSweep(model, dataset, {
        epsilons: sweepEpsilons,
        adversaries: ['fgm', 'random'],
        surfaces: ['itemFeatures'],
        testSet,
        cutoffs: CUTOFFS,
        metrics: ['hr', 'ndcg'],
        seed: 5,
      });
    const robustness = { vbpr: await sweep(continued), amr: await sweep(chosen.model) };
    for (const [name, report] of Object.entries(robustness))
      for (const p of report.points)
        log(
          `robustness ${name} ${p.adversary} eps=${p.epsilon}: ndcg@10 ${(100 * p.relativeChange['ndcg@10']!).toFixed(1)}%`,
        );

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
        protocol:
          'random leave-one-out (seed 2024) over the shared train+test files; 10% of movies (seeded) removed from training; one random training interaction per user held out for validation; test item among 999 sampled negatives',
      },
      features: {
        model: features.manifest.model,
        tensor: features.manifest.tensor,
        pooling: features.manifest.pooling,
        dimension: features.dimension,
        itemsWithoutPoster: features.missing,
        failedImages: features.manifest.failed,
        meanFeatureNormAfterNormalisation: featureNorm,
        normalisation: 'each item feature vector scaled to unit L2 norm',
      },
      config: {
        embeddingSize: 64,
        batchSize: 512,
        optimizer: 'adagrad lr 0.05, initial accumulator 0.1',
        l2: 0,
        vbprModel: `AMR Eq. 4: y_ui = p_u . (q_i + E c_i), P and Q (and their Adagrad state) from the best MF, E ~ N(0, ${PROJECTION_INIT_STD}^2)`,
        continuation: "both arms from the best VBPR checkpoint's tables and Adagrad state",
        amrSurfaces: ['itemFeatures'],
        adversarialWeight: 1,
        amrEpsilonsTried: epsilons,
        amrEpsilonChosenOnValidation: chosen.epsilon,
        earlyStopping: 'best validation ndcg@20 (full ranking) every 5 epochs, patience 4',
      },
      training: {
        mfBpr: phaseSummary(mfPhase),
        vbpr: phaseSummary(vbprPhase),
        vbprContinued: phaseSummary(continuedPhase),
        amr: Object.fromEntries(
          amrRuns.map((r) => [`epsilon=${r.epsilon}`, phaseSummary(r.phase)]),
        ),
      },
      test: table,
      comparisons: {
        amrVsVbprContinued: compare(amrResult, continuedResult),
        amrVsVbpr: compare(amrResult, vbprResult),
        vbprVsMfBpr: compare(vbprResult, mfResult),
        mfBprVsItemPop: compare(mfResult, itemPop),
      },
      robustness,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
