/**
 * `pnpm bench amr-diagnosis`: why AMR does not beat VBPR continued on ML-1M posters. The AMR
 * protocol of `quality-ml1m-posters` on a fraction of the users; MF-BPR, then VBPR from it
 * (128 principal components, library defaults otherwise), then from VBPR's parameters and
 * Adagrad state: VBPR continued and AMR at each relative epsilon, the same epochs. For each
 * model: the Frobenius norm of the feature projection E, the share of the visual part in
 * the scores of the test items (`|p_u . E c_i| / (|p_u . q_i| + |p_u . E c_i|)`, warm test
 * cases), test HR/NDCG@10 and the drop of NDCG@10 under FGM on the item features at the
 * model's own training epsilon. If AMR defends itself by shrinking E (the adversary's
 * perturbation acts through `E delta`), its visual share falls and it becomes MF-BPR again.
 * Each AMR epsilon also runs with E's norm held (`tables.featureProjection.keepNorm`), unless
 * ADVREC_KEEP_NORM=0. A last arm (unless ADVREC_APR_ARM=0) trains VBPR + APR instead: FGM on the
 * user and item ID embeddings (epsilon 0.5, lambda 1, as AMF), features untouched: does
 * adversarial training help on this data set at all when E cannot be shrunk to escape it?
 * Every arm's test NDCG@10 and HR@10 are compared with VBPR continued's (paired t-test over
 * the test cases). Environment: ADVREC_USER_FRACTION (0.33), ADVREC_MF_EPOCHS (200), ADVREC_VBPR_EPOCHS (20),
 * ADVREC_AMR_EPOCHS (10), ADVREC_AMR_EPSILONS (0.1,1).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pairedTTest, robustnessSweep } from '@advrec/metrics';
import type { EvaluationResult } from '@advrec/metrics';
import {
  ITEM_EMBEDDINGS,
  ITEM_FEATURES,
  MatrixFactorization,
  USER_EMBEDDINGS,
  VisualBPR,
  cloneTable,
} from '@advrec/models';
import type { Model, ParameterTable } from '@advrec/models';
import type { TrainConfig } from '@advrec/trainer';
import type { BenchContext } from '../../bench/src/context.js';
import { env, postersSetup, trainStage } from '../../bench/src/lib/posters-setup.js';
import { meanOverCases } from '../../bench/src/quality/quality-ml1m-posters.js';

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const directory = await mkdtemp(join(tmpdir(), 'advrec-amr-diagnosis-'));
  try {
    const fraction = env('ADVREC_USER_FRACTION', 0.33);
    const { dataset, poster, testSet, cold, coldCases, summary, evaluateAtTen } =
      await postersSetup(sharedData, directory, fraction, log);
    const validation = { every: 5, metric: 'ndcg@20', patience: 4 } as const;
    const base: TrainConfig = { seed: 1, batchSize: 512, l2: 0.0001, validation };
    const train = (
      name: string,
      model: Model,
      config: TrainConfig,
      epochs: number,
      adversarial: boolean,
      state?: readonly ParameterTable[],
    ) =>
      trainStage(dataset, log, name, model, config, epochs, {
        adversarial,
        ...(state ? { state } : {}),
      });
    const mf = new MatrixFactorization(dataset, { embeddingSize: 64, seed: 1 });
    const mfRun = await train('mf', mf, base, env('ADVREC_MF_EPOCHS', 200), false);
    const vbpr = VisualBPR.fromMatrixFactorization(
      mf,
      { data: poster.data, dimension: poster.dimension },
      { seed: 1, featureComponents: 128 },
      dataset.train,
    );
    const vbprRun = await train(
      'vbpr',
      vbpr,
      base,
      env('ADVREC_VBPR_EPOCHS', 20),
      false,
      mfRun.state,
    );
    const copy = (): VisualBPR =>
      new VisualBPR(dataset, null, vbpr.config, {
        tables: vbpr.tables.map((t) => (t.name === ITEM_FEATURES ? t : cloneTable(t))),
      });
    const rowNorm = vbpr.featureTransform.rowNorm;

    let reference: EvaluationResult | null = null;
    /** Paired t-test of a model's per-case HR/NDCG@10 against VBPR continued's. */
    const versusContinued = (result: EvaluationResult): Record<string, unknown> | null => {
      if (reference === null) return null;
      const ref = reference;
      return Object.fromEntries(
        ['hr@10', 'ndcg@10'].map((key) => {
          const t = pairedTTest(result.perUser[key]!, ref.perUser[key]!);
          return [
            key,
            {
              relativeChange: result.metrics[key]! / ref.metrics[key]! - 1,
              pValue: t.pValue,
            },
          ];
        }),
      );
    };
    /** E's norm, the visual share of warm test scores, test metrics, and the FGM drop. */
    const describe = async (
      model: VisualBPR,
      attackEpsilon: number,
    ): Promise<Record<string, unknown>> => {
      const e = model.featureProjection.values;
      let norm = 0;
      for (const v of e) norm += v * v;
      const k = model.embeddingSize;
      const d = model.featureSize;
      const p = model.userEmbeddings.values;
      const q = model.itemEmbeddings.values;
      const c = model.itemFeatures.values;
      let share = 0;
      let cases = 0;
      for (let t = 0; t < testSet.numCases; t++) {
        const item = testSet.positives[t]!;
        if (cold[item] === 1) continue;
        const u = testSet.users[t]!;
        let id = 0;
        let visual = 0;
        for (let f = 0; f < k; f++) {
          let ec = 0;
          for (let j = 0; j < d; j++) ec += c[item * d + j]! * e[j * k + f]!;
          id += p[u * k + f]! * q[item * k + f]!;
          visual += p[u * k + f]! * ec;
        }
        share += Math.abs(visual) / (Math.abs(id) + Math.abs(visual) || 1);
        cases++;
      }
      const result = await evaluateAtTen(model);
      const comparison = versusContinued(result);
      if (attackEpsilon < 0) reference = result;
      const sweep = await robustnessSweep(model, dataset, {
        epsilons: [Math.abs(attackEpsilon) * rowNorm],
        adversaries: ['fgm'],
        surfaces: [ITEM_FEATURES],
        cutoffs: [10],
        metrics: ['ndcg'],
        seed: 7,
        testSet,
      });
      return {
        featureProjectionNorm: Math.sqrt(norm),
        visualShareOfWarmTestScores: share / cases,
        test: { all: result.metrics, warm: meanOverCases(result, coldCases, false) },
        ...(comparison ? { versusVbprContinued: comparison } : {}),
        ndcg10DropUnderFgm: {
          relativeEpsilon: Math.abs(attackEpsilon),
          change: sweep.points[0]?.relativeChange,
        },
      };
    };
    const epsilons = (process.env.ADVREC_AMR_EPSILONS ?? '0.1,1').split(',').map(Number);
    const amrEpochs = env('ADVREC_AMR_EPOCHS', 10);
    const models: Record<string, unknown> = {
      vbpr: { ...vbprRun.record, ...(await describe(vbpr, Math.max(...epsilons))) },
    };
    log(`vbpr: ${JSON.stringify(models.vbpr)}`);
    const continued = copy();
    const continuedRun = await train(
      'vbpr continued',
      continued,
      base,
      amrEpochs,
      false,
      vbprRun.state,
    );
    models['vbpr continued'] = {
      ...continuedRun.record,
      // A negative epsilon marks the reference of the paired tests (attacked at its absolute value).
      ...(await describe(continued, -Math.max(...epsilons))),
    };
    log(`vbpr continued: ${JSON.stringify(models['vbpr continued'])}`);
    const keepNorm = process.env.ADVREC_KEEP_NORM !== '0';
    for (const [epsilon, held] of epsilons.flatMap(
      (e) =>
        (keepNorm
          ? [
              [e, false],
              [e, true],
            ]
          : [[e, false]]) as [number, boolean][],
    )) {
      const name = `amr eps ${epsilon}${held ? ', E norm kept' : ''}`;
      const amr = copy();
      const run = await train(
        name,
        amr,
        {
          ...base,
          adversarial: {
            adversary: 'fgm',
            epsilon: epsilon * rowNorm,
            adversarialWeight: 1,
            surfaces: [ITEM_FEATURES],
          },
          ...(held ? { tables: { featureProjection: { keepNorm: true } } } : {}),
        },
        amrEpochs,
        true,
        vbprRun.state,
      );
      models[name] = { ...run.record, ...(await describe(amr, epsilon)) };
      log(`${name}: ${JSON.stringify(models[name])}`);
    }
    if (process.env.ADVREC_APR_ARM !== '0') {
      const name = 'vbpr + apr (FGM on the ID embeddings, eps 0.5)';
      const apr = copy();
      const run = await train(
        name,
        apr,
        {
          ...base,
          adversarial: {
            adversary: 'fgm',
            epsilon: 0.5,
            adversarialWeight: 1,
            surfaces: [USER_EMBEDDINGS, ITEM_EMBEDDINGS],
          },
        },
        amrEpochs,
        true,
        vbprRun.state,
      );
      models[name] = { ...run.record, ...(await describe(apr, Math.max(...epsilons))) };
      log(`${name}: ${JSON.stringify(models[name])}`);
    }
    return {
      dataset: summary,
      protocol:
        "as quality-ml1m-posters; MF-BPR (L2 1e-4, chosen by vbpr-tuning) -> VBPR (128 principal components) -> VBPR continued | AMR (FGM on the item features, relative epsilons, lambda 1), same epochs, from VBPR's best parameters and Adagrad state; VBPR + APR (FGM on the user and item ID embeddings, epsilon 0.5, lambda 1) the same way; paired t-tests against VBPR continued over the test cases; FGM drop at the largest epsilon for VBPR and VBPR continued, at its own for AMR",
      featureRowNorm: rowNorm,
      mfBpr: mfRun.record,
      models,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
