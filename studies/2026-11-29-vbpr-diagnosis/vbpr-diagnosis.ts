/**
 * `pnpm bench vbpr-diagnosis`: why does VBPR lose to MF-BPR on real image features? One
 * experiment that separates the causes, on the AMR protocol of `quality-ml1m-posters` (a
 * seeded fraction of ML-1M's users, 10% of movies cold, MobileNetV2 poster features) and on
 * the synthetic set whose preferences are planted through the features:
 *
 * - feature scale and centring (raw CNN features, unit rows, centred rows of mean norm 1):
 *   under Adagrad the features' scale is E's effective learning rate;
 * - the shared-user model (AMR Eq. 4) against VBPR's own (Eq. 2, theta_u);
 * - what the posters carry: the same model on features shuffled across items;
 * - L2 regularisation;
 * - item-ID dropout (ADVREC_DIAG_DROPOUT=1): VBPR from one MF at several `itemIdDropout` rates.
 *
 * Every arm trains from scratch with the same schedule and early stopping on validation
 * NDCG@20; test is the AMR protocol (the test item among 999 sampled negatives), reported on
 * all, warm and cold-start cases, plus cold items ranked among cold items only.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  alignItemFeatures,
  generateSynthetic,
  holdOutValidation,
  leaveOneOut,
  Random,
} from '@advrec/data';
import type { Dataset, SampledTestSet } from '@advrec/data';
import { evaluateFullRanking, evaluateSampled, pairedTTest } from '@advrec/metrics';
import type { EvaluationResult } from '@advrec/metrics';
import {
  MatrixFactorization,
  VisualBPR,
  applyFeatureTransform,
  fitFeatureTransform,
} from '@advrec/models';
import type { Model } from '@advrec/models';
import { Trainer, trainAmrChain } from '@advrec/trainer';
import type { TrainConfig } from '@advrec/trainer';
import type { BenchContext } from '../../bench/src/context.js';
import { env, postersSetup } from '../../bench/src/lib/posters-setup.js';
import { coldAmongColdHits, meanOverCases } from '../../bench/src/quality/quality-ml1m-posters.js';

interface Features {
  readonly data: Float32Array;
  readonly dimension: number;
}

/** Mean row L2 norm over rows that are not all zero. */
function meanNorm(f: Features): number {
  let sum = 0;
  let rows = 0;
  for (let i = 0; i < f.data.length / f.dimension; i++) {
    let s = 0;
    for (let k = 0; k < f.dimension; k++) s += f.data[i * f.dimension + k]! ** 2;
    if (s > 0) {
      sum += Math.sqrt(s);
      rows++;
    }
  }
  return sum / Math.max(1, rows);
}

/** Mean cosine similarity of 2,000 random pairs of non-zero rows: how alike the items look. */
function meanCosine(f: Features, seed = 7): number {
  const random = new Random(seed);
  const n = f.data.length / f.dimension;
  const row = (i: number) => f.data.subarray(i * f.dimension, (i + 1) * f.dimension);
  let sum = 0;
  let pairs = 0;
  for (let t = 0; t < 2000; t++) {
    const a = row(random.nextInt(n));
    const b = row(random.nextInt(n));
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let k = 0; k < f.dimension; k++) {
      ab += a[k]! * b[k]!;
      aa += a[k]! ** 2;
      bb += b[k]! ** 2;
    }
    if (aa > 0 && bb > 0) {
      sum += ab / Math.sqrt(aa * bb);
      pairs++;
    }
  }
  return sum / pairs;
}

/** Each row scaled to norm 1 (the library's `unit` preparation). */
function unitRows(f: Features): Features {
  return {
    data: applyFeatureTransform(f, fitFeatureTransform(f, 'unit', 1)),
    dimension: f.dimension,
  };
}

/** Centred rows of mean norm 1 (the library's `centred` preparation with `featureNorm` 1). */
function centred(f: Features): Features {
  return {
    data: applyFeatureTransform(f, fitFeatureTransform(f, 'centred', 1)),
    dimension: f.dimension,
  };
}

/** Every row multiplied by `factor` (E's effective Adagrad step scales with the features). */
function scaled(f: Features, factor: number): Features {
  return { data: Float32Array.from(f.data, (v) => v * factor), dimension: f.dimension };
}

/** The same rows, assigned to other items (a seeded permutation): features without signal. */
function shuffled(f: Features, seed = 11): Features {
  const d = f.dimension;
  const n = f.data.length / d;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  new Random(seed).shuffle(order);
  const data = new Float32Array(f.data.length);
  for (let i = 0; i < n; i++) data.set(f.data.subarray(order[i]! * d, (order[i]! + 1) * d), i * d);
  return { data, dimension: d };
}

interface Arm {
  readonly name: string;
  readonly create: () => Model;
  readonly l2?: number;
}

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const directory = await mkdtemp(join(tmpdir(), 'advrec-vbpr-diag-'));
  const maxEpochs = env('ADVREC_DIAG_EPOCHS', 60);
  const mfEpochs = env('ADVREC_DIAG_MF_EPOCHS', 200);
  const validation = { every: 5, metric: 'ndcg@20', patience: 4 } as const;
  const base: TrainConfig = { seed: 1, batchSize: 512, l2: 0, validation };
  try {
    // ---- ML-1M posters -------------------------------------------------------------
    const fraction = env('ADVREC_DIAG_USERS', 0.33);
    const { dataset, poster, testSet, cold, coldItems, coldCases } = await postersSetup(
      sharedData,
      directory,
      fraction,
      log,
    );
    const raw: Features = { data: poster.data, dimension: poster.dimension };
    const variants = { raw, unit: unitRows(raw), centred: centred(raw) };
    const featureStats = Object.fromEntries(
      Object.entries(variants).map(([name, f]) => [
        name,
        { meanRowNorm: meanNorm(f), meanCosineOfRandomPairs: meanCosine(f) },
      ]),
    );
    log(`features: ${JSON.stringify(featureStats)}`);
    const vbpr =
      (f: Features, config: Record<string, unknown> = {}) =>
      (): Model =>
        new VisualBPR(
          dataset,
          f,
          // The arms prepare their own features: the model must take them as given.
          { embeddingSize: 64, seed: 1, featureNormalization: 'none', ...config },
          { train: dataset.train },
        );
    const arms: Arm[] = [
      {
        name: 'mf-bpr',
        create: () => new MatrixFactorization(dataset, { embeddingSize: 64, seed: 1 }),
      },
      { name: 'vbpr raw features', create: vbpr(variants.raw) },
      { name: 'vbpr unit rows', create: vbpr(variants.unit) },
      { name: 'vbpr centred', create: vbpr(variants.centred) },
      { name: 'vbpr centred, row norm 0.1', create: vbpr(scaled(variants.centred, 0.1)) },
      {
        name: 'vbpr centred, row norm 1/sqrt(D)',
        create: vbpr(scaled(variants.centred, 1 / Math.sqrt(raw.dimension))),
      },
      { name: 'vbpr centred, shuffled across items', create: vbpr(shuffled(variants.centred)) },
      {
        name: 'vbpr centred, separate theta_u (VBPR Eq. 2)',
        create: vbpr(variants.centred, { userVisual: 'separate' }),
      },
      { name: 'vbpr centred, l2 1e-4', create: vbpr(variants.centred), l2: 1e-4 },
      {
        name: 'mf-bpr, l2 1e-4',
        create: () => new MatrixFactorization(dataset, { embeddingSize: 64, seed: 1 }),
        l2: 1e-4,
      },
    ];
    const only = process.env.ADVREC_DIAG_ARMS?.split('|');
    const results: Record<string, unknown> = {};
    const tests: Record<string, EvaluationResult> = {};
    for (const arm of arms) {
      if (only && !only.includes(arm.name)) continue;
      const model = arm.create();
      const started = performance.now();
      const trainer = await Trainer.create(
        model,
        dataset,
        { ...base, l2: arm.l2 ?? 0 },
        {
          onValidation: (v) =>
            log(
              `${arm.name} epoch ${v.epoch} ndcg@20 ${v.value.toFixed(4)}${v.improved ? ' *' : ''}`,
            ),
        },
      );
      const phase = await trainer.runPhase({
        epochs: arm.name.startsWith('mf') ? mfEpochs : maxEpochs,
        adversarial: false,
      });
      await trainer.close();
      const test = await evaluateSampled(
        model as Parameters<typeof evaluateSampled>[0],
        dataset,
        testSet,
        {
          cutoffs: [10],
          metrics: ['hr', 'ndcg'],
        },
      );
      tests[arm.name] = test;
      results[arm.name] = {
        epochsRun: phase.epochs.length,
        bestEpoch: phase.bestEpoch,
        bestValidationNdcg20: phase.bestValue,
        seconds: (performance.now() - started) / 1000,
        test: {
          all: test.metrics,
          warm: meanOverCases(test, coldCases, false),
          cold: meanOverCases(test, coldCases, true),
          coldAmongColdHr10: coldAmongCold(model, testSet, cold, coldItems),
        },
      };
      log(`${arm.name}: ${JSON.stringify(results[arm.name])}`);
    }
    const versusMf = Object.fromEntries(
      Object.entries(tests)
        .filter(([name]) => name !== 'mf-bpr' && tests['mf-bpr'])
        .map(([name, r]) => [
          name,
          Object.fromEntries(
            ['hr@10', 'ndcg@10'].map((key) => [
              key,
              {
                relative: r.metrics[key]! / tests['mf-bpr']!.metrics[key]! - 1,
                pValue: pairedTTest(r.perUser[key]!, tests['mf-bpr']!.perUser[key]!).pValue,
              },
            ]),
          ),
        ]),
    );

    // ---- The AMR chain (MF -> VBPR -> VBPR continued | AMR) with the library's defaults ---
    let chain: Record<string, unknown> | null = null;
    if (process.env.ADVREC_DIAG_CHAIN === '1') {
      const epochs = {
        mf: env('ADVREC_DIAG_CHAIN_MF', 60),
        vbpr: env('ADVREC_DIAG_CHAIN_VBPR', 10),
        amr: env('ADVREC_DIAG_CHAIN_AMR', 10),
      };
      const result = await trainAmrChain(dataset, {
        features: raw,
        mfEpochs: epochs.mf,
        vbprEpochs: epochs.vbpr,
        amrEpochs: epochs.amr,
        modelSeed: 1,
        train: { ...base, validation: { ...validation, patience: 100 } },
        callbacks: (stage) => ({
          onValidation: (v) =>
            log(
              `chain ${stage} epoch ${v.epoch} ndcg@20 ${v.value.toFixed(4)}${v.improved ? ' *' : ''}`,
            ),
        }),
      });
      const stages = Object.fromEntries(
        Object.entries(result.phases).map(([stage, phase]) => [
          stage,
          phase
            ? {
                firstValidation: phase.validations[0]?.value ?? null,
                bestValidationNdcg20: phase.bestValue,
                bestEpoch: phase.bestEpoch,
                curve: phase.validations.map((v) => [v.epoch, v.value]),
              }
            : null,
        ]),
      );
      const models = {
        mf: result.mf,
        vbpr: result.vbpr,
        vbprContinued: result.vbprContinued!,
        amr: result.amr,
      };
      const test: Record<string, unknown> = {};
      for (const [name, model] of Object.entries(models)) {
        const r = await evaluateSampled(
          model as Parameters<typeof evaluateSampled>[0],
          dataset,
          testSet,
          {
            cutoffs: [10],
            metrics: ['hr', 'ndcg'],
          },
        );
        test[name] = {
          all: r.metrics,
          warm: meanOverCases(r, coldCases, false),
          cold: meanOverCases(r, coldCases, true),
          coldAmongColdHr10: coldAmongCold(model, testSet, cold, coldItems),
        };
      }
      chain = { epochs, epsilonRelative: 0.1, stages, test };
      log(`chain: ${JSON.stringify(chain)}`);
    }

    // ---- Item-ID dropout: VBPR from one MF, each rate, same schedule --------------------
    let dropout: Record<string, unknown> | null = null;
    if (process.env.ADVREC_DIAG_DROPOUT === '1') {
      const rates = (process.env.ADVREC_DIAG_DROPOUT_RATES ?? '0,0.2,0.5').split(',').map(Number);
      const vbprEpochs = env('ADVREC_DIAG_DROPOUT_EPOCHS', 20);
      const mf = new MatrixFactorization(dataset, { embeddingSize: 64, seed: 1 });
      let trainer = await Trainer.create(mf, dataset, base);
      const mfPhase = await trainer.runPhase({ epochs: mfEpochs, adversarial: false });
      await trainer.close();
      log(`dropout: mf best epoch ${mfPhase.bestEpoch} ndcg@20 ${mfPhase.bestValue.toFixed(4)}`);
      const arms: Record<string, unknown> = {};
      for (const rate of rates) {
        const model = VisualBPR.fromMatrixFactorization(
          mf,
          raw,
          { seed: 1, itemIdDropout: rate },
          dataset.train,
        );
        trainer = await Trainer.create(model, dataset, base, {
          onValidation: (v) =>
            log(`dropout ${rate} epoch ${v.epoch} ndcg@20 ${v.value.toFixed(4)}`),
        });
        const phase = await trainer.runPhase({ epochs: vbprEpochs, adversarial: false });
        await trainer.close();
        const test = await evaluateSampled(
          model as Parameters<typeof evaluateSampled>[0],
          dataset,
          testSet,
          { cutoffs: [10], metrics: ['hr', 'ndcg', 'auc'] },
        );
        arms[String(rate)] = {
          bestEpoch: phase.bestEpoch,
          bestValidationNdcg20: phase.bestValue,
          test: {
            all: test.metrics,
            warm: meanOverCases(test, coldCases, false),
            cold: meanOverCases(test, coldCases, true),
            coldAmongColdHr10: coldAmongCold(model, testSet, cold, coldItems),
          },
        };
        log(`dropout ${rate}: ${JSON.stringify(arms[String(rate)])}`);
      }
      dropout = {
        protocol:
          'MF-BPR (early stopping), then VBPR initialised from it (library defaults but itemIdDropout; a fresh Adagrad), best validation epoch kept; test as above',
        mf: { bestEpoch: mfPhase.bestEpoch, bestValidationNdcg20: mfPhase.bestValue },
        vbprEpochs,
        chanceAmongColdHr10: Math.min(1, 10 / coldItems.length),
        rates: arms,
      };
    }

    // ---- Synthetic, preferences planted through the features --------------------------
    if (process.env.ADVREC_DIAG_SYNTHETIC === '0')
      return { ml1mPosters: { amrChainWithDefaults: chain, itemIdDropout: dropout } };
    const synthetic = generateSynthetic({
      users: 2000,
      items: 1500,
      featureDimension: 32,
      seed: 3,
    });
    const synth: Dataset = holdOutValidation(
      leaveOneOut(synthetic.log, { order: 'random', seed: 3 }),
      {
        seed: 3,
      },
    );
    // The generator's rows follow its item ids i0, i1, ...; the split keeps items with interactions.
    const plantedRaw: Features = {
      data: alignItemFeatures(
        {
          data: synthetic.itemFeatures!,
          rows: synthetic.itemFeatures!.length / 32,
          dimension: 32,
          fileType: 'float32',
          source: 'synthetic',
        },
        synth.itemIdMap,
        { rowIds: Array.from({ length: synthetic.itemFeatures!.length / 32 }, (_, i) => `i${i}`) },
      ).matrix,
      dimension: 32,
    };
    const syntheticArms: Arm[] = [
      {
        name: 'mf-bpr',
        create: () => new MatrixFactorization(synth, { embeddingSize: 64, seed: 1 }),
      },
      {
        name: 'vbpr raw features',
        create: () =>
          new VisualBPR(
            synth,
            plantedRaw,
            { embeddingSize: 64, seed: 1, featureNormalization: 'none' },
            { train: synth.train },
          ),
      },
      {
        name: 'vbpr centred',
        create: () =>
          new VisualBPR(
            synth,
            centred(plantedRaw),
            { embeddingSize: 64, seed: 1, featureNormalization: 'none' },
            { train: synth.train },
          ),
      },
      {
        name: 'vbpr, default preparation (centred, mean norm 1/sqrt(D))',
        create: () =>
          new VisualBPR(synth, plantedRaw, { embeddingSize: 64, seed: 1 }, { train: synth.train }),
      },
      {
        name: 'vbpr centred, shuffled across items',
        create: () =>
          new VisualBPR(
            synth,
            shuffled(centred(plantedRaw)),
            { embeddingSize: 64, seed: 1, featureNormalization: 'none' },
            { train: synth.train },
          ),
      },
    ];
    const syntheticResults: Record<string, unknown> = {};
    for (const arm of syntheticArms) {
      const model = arm.create();
      const trainer = await Trainer.create(model, synth, base);
      const phase = await trainer.runPhase({
        epochs: arm.name.startsWith('mf') ? 200 : 100,
        adversarial: false,
      });
      await trainer.close();
      const test = await evaluateFullRanking(
        model as Parameters<typeof evaluateFullRanking>[0],
        synth,
        {
          cutoffs: [10, 20],
          metrics: ['recall', 'ndcg'],
        },
      );
      syntheticResults[arm.name] = {
        bestEpoch: phase.bestEpoch,
        bestValidationNdcg20: phase.bestValue,
        test: test.metrics,
      };
      log(`synthetic ${arm.name}: ${JSON.stringify(syntheticResults[arm.name])}`);
    }
    return {
      ml1mPosters: {
        dataset: {
          users: dataset.numUsers,
          items: dataset.numItems,
          train: dataset.train.nnz,
          userFraction: fraction,
          testCases: testSet.numCases,
          coldCases: coldCases.filter(Boolean).length,
          coldItems: coldItems.length,
        },
        features: {
          source: poster.manifest.model,
          tensor: poster.manifest.inputName,
          statistics: featureStats,
        },
        protocol:
          'AMR protocol: random leave-one-out, 10% of movies cold, test item among 999 sampled negatives; cold-among-cold: each cold test item ranked among all cold items',
        training: { ...base, maxEpochs, mfEpochs, optimizer: 'adagrad lr 0.05 (default)' },
        arms: results,
        versusMfBpr: versusMf,
        amrChainWithDefaults: chain,
        itemIdDropout: dropout,
      },
      synthetic: {
        dataset:
          'generateSynthetic users 2000 items 1500 featureDimension 32 seed 3, random leave-one-out, full ranking',
        arms: syntheticResults,
      },
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** HR@10 of cold test items ranked among every cold item (pessimistic ties), over cases. */
function coldAmongCold(
  model: Model,
  testSet: SampledTestSet,
  cold: Uint8Array,
  coldItems: Int32Array,
): number {
  const hits = coldAmongColdHits(model, testSet, cold, coldItems);
  return hits.length > 0 ? hits.reduce((a, b) => a + b, 0) / hits.length : Number.NaN;
}
