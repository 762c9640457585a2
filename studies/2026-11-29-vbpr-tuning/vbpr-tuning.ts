/**
 * `pnpm bench vbpr-tuning`: the AMR paper's tuning of MF-BPR and VBPR on validation, on the
 * ML-1M posters data set of `quality-ml1m-posters` (AMR protocol, a fraction of the users
 * to fit the grid in a session). MF-BPR: L2 over a grid at the default learning rate, the
 * best on validation kept. VBPR from that MF (its parameters and Adagrad state): the
 * learning rate and L2 of the feature projection E (separate from the embeddings', as
 * VBPR's lambda_E), the prepared features' row norm, and the features reduced by PCA. Each
 * arm records its best validation NDCG@20, epochs, seconds per epoch, and test HR/NDCG@10
 * on warm, cold and all cases with paired t-tests against the chosen MF (reported, never
 * used to choose). Environment: ADVREC_USER_FRACTION (0.33), ADVREC_MF_EPOCHS (200),
 * ADVREC_VBPR_EPOCHS (20), ADVREC_MF_L2S (0,0.0001,0.001,0.01), ADVREC_TUNING_ARMS (all;
 * names separated by |).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { principalComponents } from '@advrec/data';
import { pairedTTest } from '@advrec/metrics';
import type { EvaluationResult } from '@advrec/metrics';
import { MatrixFactorization, VisualBPR, defaultFeatureNorm } from '@advrec/models';
import type { Model, ParameterTable, VisualBPRConfig } from '@advrec/models';
import type { TrainConfig } from '@advrec/trainer';
import type { BenchContext } from '../../bench/src/context.js';
import { env, postersSetup, trainStage } from '../../bench/src/lib/posters-setup.js';
import { coldAmongColdHits, meanOverCases } from '../../bench/src/quality/quality-ml1m-posters.js';

const list = (name: string, fallback: string): number[] =>
  (process.env[name] ?? fallback).split(',').map(Number);

interface Features {
  readonly data: Float32Array;
  readonly dimension: number;
}

/** One VBPR arm of the grid. */
interface VbprArm {
  readonly name: string;
  readonly features: 'full' | number;
  readonly vbpr?: VisualBPRConfig;
  readonly projection?: { readonly learningRate?: number; readonly l2?: number };
}

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const directory = await mkdtemp(join(tmpdir(), 'advrec-vbpr-tuning-'));
  try {
    const fraction = env('ADVREC_USER_FRACTION', 0.33);
    const { dataset, poster, testSet, cold, coldItems, coldCases, summary, evaluateAtTen } =
      await postersSetup(sharedData, directory, fraction, log);
    const full: Features = { data: poster.data, dimension: poster.dimension };
    const validation = { every: 5, metric: 'ndcg@20', patience: 4 } as const;
    const only = process.env.ADVREC_TUNING_ARMS?.split('|');
    const wanted = (name: string): boolean => !only || only.includes(name);

    const evaluate = async (
      model: Model,
    ): Promise<{ result: EvaluationResult; summary: Record<string, unknown> }> => {
      const result = await evaluateAtTen(model);
      const coldHits = coldAmongColdHits(model, testSet, cold, coldItems);
      return {
        result,
        summary: {
          all: result.metrics,
          warm: meanOverCases(result, coldCases, false),
          cold: meanOverCases(result, coldCases, true),
          coldAmongColdHr10: coldHits.reduce((a, b) => a + b, 0) / Math.max(1, coldHits.length),
        },
      };
    };
    const train = (
      name: string,
      model: Model,
      config: TrainConfig,
      epochs: number,
      state?: readonly ParameterTable[],
    ) => trainStage(dataset, log, name, model, config, epochs, state ? { state } : {});

    // ---- MF-BPR: L2 on validation ---------------------------------------------------
    const mfEpochs = env('ADVREC_MF_EPOCHS', 200);
    const base: TrainConfig = { seed: 1, batchSize: 512, validation };
    const mfArms: Record<string, unknown> = {};
    let chosen: {
      l2: number;
      value: number;
      model: MatrixFactorization;
      state: ParameterTable[];
      test: EvaluationResult;
    } | null = null;
    for (const l2 of list('ADVREC_MF_L2S', '0,0.0001,0.001,0.01')) {
      const model = new MatrixFactorization(dataset, { embeddingSize: 64, seed: 1 });
      const { record, state } = await train(`mf l2=${l2}`, model, { ...base, l2 }, mfEpochs);
      const { result, summary } = await evaluate(model);
      mfArms[`l2=${l2}`] = { ...record, test: summary };
      log(`mf l2=${l2}: ${JSON.stringify(mfArms[`l2=${l2}`])}`);
      const value = record.bestValidationNdcg20 as number;
      if (!chosen || value > chosen.value) chosen = { l2, value, model, state, test: result };
    }
    const mf = chosen!;
    log(`MF-BPR chosen on validation: l2=${mf.l2}`);

    // ---- VBPR from the chosen MF ------------------------------------------------------
    const vbprEpochs = env('ADVREC_VBPR_EPOCHS', 20);
    const reduced = new Map<number, { features: Features; explained: number; seconds: number }>();
    const featuresOf = (which: 'full' | number): Features => {
      if (which === 'full') return full;
      let r = reduced.get(which);
      if (!r) {
        const started = performance.now();
        const pca = principalComponents(full, { components: which, seed: 1 });
        r = {
          features: { data: pca.project(full), dimension: which },
          explained: pca.explainedVarianceRatio,
          seconds: (performance.now() - started) / 1000,
        };
        reduced.set(which, r);
        log(
          `PCA to ${which}: ${(100 * r.explained).toFixed(1)}% of the variance, ${r.seconds.toFixed(1)} s`,
        );
      }
      return r.features;
    };
    const d = full.dimension;
    const arms: VbprArm[] = [
      { name: 'defaults (1280-d)', features: 'full' },
      { name: 'PCA 128', features: 128 },
      { name: 'PCA 256', features: 256 },
      { name: 'PCA 128, E lr 0.01', features: 128, projection: { learningRate: 0.01 } },
      { name: 'PCA 128, E lr 0.2', features: 128, projection: { learningRate: 0.2 } },
      { name: 'PCA 128, E l2 0', features: 128, projection: { l2: 0 } },
      { name: 'PCA 128, E l2 0.001', features: 128, projection: { l2: 0.001 } },
      { name: 'PCA 128, E l2 0.01', features: 128, projection: { l2: 0.01 } },
      { name: 'PCA 128, row norm 0.3', features: 128, vbpr: { featureNorm: 0.3 } },
      { name: 'PCA 128, row norm 1', features: 128, vbpr: { featureNorm: 1 } },
      { name: 'PCA 128, no item-ID dropout', features: 128, vbpr: { itemIdDropout: 0 } },
      {
        name: 'PCA 128, separate theta_u (VBPR Eq. 2)',
        features: 128,
        vbpr: { userVisual: 'separate' },
      },
    ];
    const vbprArms: Record<string, unknown> = {};
    for (const arm of arms) {
      if (!wanted(arm.name)) continue;
      const features = featuresOf(arm.features);
      const model = VisualBPR.fromMatrixFactorization(
        mf.model,
        features,
        { seed: 1, ...arm.vbpr },
        dataset.train,
      );
      const config: TrainConfig = {
        ...base,
        l2: mf.l2,
        ...(arm.projection ? { tables: { featureProjection: arm.projection } } : {}),
      };
      const { record } = await train(arm.name, model, config, vbprEpochs, mf.state);
      const { result, summary } = await evaluate(model);
      const versusMf = Object.fromEntries(
        ['hr@10', 'ndcg@10'].map((key) => {
          const warm = (values: ArrayLike<number>): number[] =>
            Array.from(values).filter((_, c) => !coldCases[c]);
          return [
            key,
            {
              all: {
                relative: result.metrics[key]! / mf.test.metrics[key]! - 1,
                pValue: pairedTTest(result.perUser[key]!, mf.test.perUser[key]!).pValue,
              },
              warm: {
                pValue: pairedTTest(warm(result.perUser[key]!), warm(mf.test.perUser[key]!)).pValue,
              },
            },
          ];
        }),
      );
      vbprArms[arm.name] = {
        features: arm.features === 'full' ? d : arm.features,
        featureNorm: model.featureTransform.rowNorm,
        ...(arm.vbpr ? { vbpr: arm.vbpr } : {}),
        ...(arm.projection ? { featureProjection: arm.projection } : {}),
        ...record,
        test: summary,
        versusMf,
      };
      log(`${arm.name}: ${JSON.stringify(vbprArms[arm.name])}`);
    }
    return {
      dataset: {
        ...summary,
        protocol:
          'as quality-ml1m-posters: random leave-one-out, 10% of movies cold, validation carved from train; test item among 999 sampled negatives',
      },
      features: {
        model: poster.manifest.model,
        dimension: d,
        defaultRowNorm: defaultFeatureNorm(d),
        pca: Object.fromEntries(
          [...reduced].map(([k, r]) => [
            k,
            { explainedVarianceRatio: r.explained, seconds: r.seconds },
          ]),
        ),
      },
      protocol: {
        optimizer: 'adagrad lr 0.05 (embeddings), Adagrad state carried from MF to VBPR',
        batchSize: 512,
        validation:
          'ndcg@20 (full ranking) every 5 epochs, patience 4; every choice on validation only',
        maxEpochs: { mf: mfEpochs, vbpr: vbprEpochs },
        chosenMfL2: mf.l2,
      },
      mfBpr: mfArms,
      vbpr: vbprArms,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
