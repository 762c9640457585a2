/**
 * `pnpm bench amr-official` (about 20 minutes): does the AMR authors' own training recipe
 * make AMR beat VBPR continued on ML-1M posters, and if it does, is it the adversary or the
 * recipe? The official code (github.com/duxy-me/AMR, `run.sh` and `src/model/VBPR.py`)
 * continues a pretrained VBPR with a fresh Adagrad per table: learning rates 0.01 for the user
 * embeddings P, 1e-4 for the item embeddings Q and 1e-3 for the projection E, L2 0.1 on the
 * batch's user rows and 1e-3 on its item vectors, none on E, epsilon 0.1 (absolute, on raw
 * ResNet features), lambda 1. Our chain instead carries VBPR's Adagrad state with one rate
 * (0.05) and L2 1e-4 everywhere. From the same VBPR (as `amr-grid`: a third of the users, 128
 * principal components), every arm trains the same epochs and keeps its best validation
 * epoch:
 * - ours: VBPR continued (the reference of `amr-grid`);
 * - the official recipe without adversary (its own VBPR continued);
 * - the official recipe with AMR at the official epsilon, translated to our features (0.1
 *   over the raw features' mean row norm, relative), and at our default relative 0.1;
 * - the official recipe with lambda 1 and epsilon 0: the adversarial term is then a second
 *   copy of the clean BPR loss. If this arm matches AMR, the gain (if any) comes from
 *   weighting the BPR loss twice under Adagrad, not from the perturbation.
 * Translation to our prepared features: E's rate is scaled by the raw row norm over the
 * prepared one (so that `E c` moves by the same relative amount per step), and the official
 * L2 on the whole item vector `q_i + E c_i` is applied to Q only. Each arm's test HR/NDCG@10
 * is compared with both continued arms (paired t-test over the test cases), with E's norm
 * and the mean user-embedding norm. Environment: ADVREC_USER_FRACTION (0.33),
 * ADVREC_MF_EPOCHS (200), ADVREC_VBPR_EPOCHS (20), ADVREC_AMR_EPOCHS (10).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FEATURE_PROJECTION,
  ITEM_EMBEDDINGS,
  ITEM_FEATURES,
  USER_EMBEDDINGS,
} from '@advrec/models';
import type { VisualBPR } from '@advrec/models';
import type { TrainConfig } from '@advrec/trainer';
import type { BenchContext } from '../../bench/src/context.js';
import {
  env,
  postersSetup,
  trainStage,
  vbprChainStart,
  versus,
} from '../../bench/src/lib/posters-setup.js';

/** Mean Euclidean norm of the non-zero rows of a row-major matrix. */
function meanRowNorm(data: Float32Array, dimension: number): number {
  let sum = 0;
  let rows = 0;
  for (let r = 0; r < data.length / dimension; r++) {
    let s = 0;
    for (let f = 0; f < dimension; f++) s += data[r * dimension + f]! ** 2;
    if (s > 0) {
      sum += Math.sqrt(s);
      rows++;
    }
  }
  return sum / Math.max(rows, 1);
}

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const directory = await mkdtemp(join(tmpdir(), 'advrec-amr-official-'));
  try {
    const fraction = env('ADVREC_USER_FRACTION', 0.33);
    const setup = await postersSetup(sharedData, directory, fraction, log);
    const { dataset, poster, summary, evaluateAtTen } = setup;
    const epochs = env('ADVREC_AMR_EPOCHS', 10);
    const {
      base,
      mfRun,
      vbpr,
      vbprRun,
      continued,
      continuedRun,
      reference,
      copy,
      versusContinued,
    } = await vbprChainStart(setup, log, epochs);
    const rowNorm = vbpr.featureTransform.rowNorm;
    const rawRowNorm = meanRowNorm(poster.data, poster.dimension);
    const tables = {
      [USER_EMBEDDINGS]: { learningRate: 0.01, l2: 0.1 },
      [ITEM_EMBEDDINGS]: { learningRate: 1e-4, l2: 1e-3 },
      [FEATURE_PROJECTION]: { learningRate: 1e-3 * (rawRowNorm / rowNorm), l2: 0 },
    };
    const official: TrainConfig = { ...base, tables };
    const norms = (model: VisualBPR): { featureProjection: number; meanUserEmbedding: number } => {
      const e = model.featureProjection.values;
      const p = model.tables.find((t) => t.name === USER_EMBEDDINGS)!;
      let users = 0;
      for (let u = 0; u < p.rows; u++) {
        let s = 0;
        for (let f = 0; f < p.dimension; f++) s += p.values[u * p.dimension + f]! ** 2;
        users += Math.sqrt(s);
      }
      return {
        featureProjection: Math.sqrt(e.reduce((s, v) => s + v * v, 0)),
        meanUserEmbedding: users / p.rows,
      };
    };

    // The official recipe's own VBPR continued: fresh Adagrad, no adversary.
    const officialContinued = copy();
    const officialContinuedRun = await trainStage(
      dataset,
      log,
      'official vbpr continued',
      officialContinued,
      official,
      epochs,
    );
    const officialReference = await evaluateAtTen(officialContinued);
    const versusOfficial = versus(officialReference);

    const arms: Record<string, unknown>[] = [];
    const officialEpsilon = 0.1 / rawRowNorm;
    const settings: { name: string; relativeEpsilon: number }[] = [
      { name: 'official recipe, AMR at the official epsilon', relativeEpsilon: officialEpsilon },
      { name: 'official recipe, AMR at relative epsilon 0.1', relativeEpsilon: 0.1 },
      { name: 'official recipe, lambda 1 and epsilon 0 (BPR weighted twice)', relativeEpsilon: 0 },
    ];
    for (const { name, relativeEpsilon } of settings) {
      const amr = copy();
      const stage = await trainStage(
        dataset,
        log,
        name,
        amr,
        {
          ...official,
          adversarial: {
            adversary: 'fgm',
            epsilon: relativeEpsilon * rowNorm,
            adversarialWeight: 1,
            surfaces: [ITEM_FEATURES],
          },
        },
        epochs,
        { adversarial: true },
      );
      const result = await evaluateAtTen(amr);
      const arm = {
        name,
        relativeEpsilon,
        ...stage.record,
        test: result.metrics,
        norms: norms(amr),
        versusOfficialContinued: versusOfficial(result),
        versusOurContinued: versusContinued(result),
      };
      log(JSON.stringify(arm));
      arms.push(arm);
    }
    return {
      dataset: summary,
      protocol:
        "as amr-grid: MF-BPR (L2 1e-4) -> VBPR (128 principal components, MF's Adagrad state) -> from VBPR's best parameters, every arm the same epochs, best validation epoch (NDCG@20, full ranking) kept; test on 999 sampled negatives, paired t-tests. The official recipe: a fresh Adagrad (initial accumulator 0.1) with per-table rates P 0.01, Q 1e-4, E 1e-3 x (raw row norm / prepared row norm), L2 P 0.1, Q 1e-3, E 0; ours: VBPR's Adagrad state carried, rate 0.05 and L2 1e-4 for every table",
      featureRowNorm: { prepared: rowNorm, raw: rawRowNorm },
      officialTables: tables,
      officialRelativeEpsilon: officialEpsilon,
      mfBpr: mfRun.record,
      vbpr: { ...vbprRun.record, norms: norms(vbpr) },
      ourVbprContinued: {
        ...continuedRun.record,
        test: reference.metrics,
        norms: norms(continued),
      },
      officialVbprContinued: {
        ...officialContinuedRun.record,
        test: officialReference.metrics,
        norms: norms(officialContinued),
        versusOurContinued: versusContinued(officialReference),
      },
      arms,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
