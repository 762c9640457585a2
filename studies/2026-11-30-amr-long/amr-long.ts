/**
 * `pnpm bench amr-long` (about 30 minutes): is AMR a regulariser that pays off only in long
 * training? For the AMR model the feature adversary has a closed form (a pair's margin falls
 * by exactly `2 epsilon ||E^T p_u||`), so AMR is BPR plus a penalty on the visual part's
 * sensitivity. Such a penalty can only beat VBPR continued if VBPR continued overfits, and
 * early stopping (every other AMR benchmark keeps each arm's best validation epoch) removes
 * that. The AMR authors' code trains up to 2,000 epochs and reports curves over epochs. Here,
 * from the same VBPR as `amr-grid` (a third of the users, 128 principal components), VBPR
 * continued and AMR (FGM on the features, relative epsilon 0.1, lambda 1: the paper's
 * Pinterest setting) train the same long run with no early stopping, validated every 5
 * epochs; the curves say whether VBPR continued declines while AMR holds. Test HR/NDCG@10
 * at each arm's best validation epoch, with a paired t-test. Environment:
 * ADVREC_USER_FRACTION (0.33), ADVREC_LONG_EPOCHS (50), ADVREC_AMR_EPSILON (0.1).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ITEM_FEATURES } from '@advrec/models';
import type { BenchContext } from '../../bench/src/context.js';
import {
  env,
  postersSetup,
  trainStage,
  vbprChainStart,
  versus,
} from '../../bench/src/lib/posters-setup.js';

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const directory = await mkdtemp(join(tmpdir(), 'advrec-amr-long-'));
  try {
    const fraction = env('ADVREC_USER_FRACTION', 0.33);
    const setup = await postersSetup(sharedData, directory, fraction, log);
    const { dataset, summary, evaluateAtTen } = setup;
    const epochs = env('ADVREC_LONG_EPOCHS', 50);
    const epsilon = env('ADVREC_AMR_EPSILON', 0.1);
    // The chain's own continued arm (early stopping, as the other studies) is the short baseline.
    const { base, vbpr, vbprRun, continuedRun, reference, copy, versusContinued } =
      await vbprChainStart(setup, log, 10);
    const rowNorm = vbpr.featureTransform.rowNorm;
    const long = { ...base, validation: { every: 5, metric: 'ndcg@20' } } as const;

    const continued = copy();
    const continuedLong = await trainStage(
      dataset,
      log,
      'vbpr continued (long)',
      continued,
      long,
      epochs,
      { state: vbprRun.state },
    );
    const continuedResult = await evaluateAtTen(continued);
    const amr = copy();
    const amrLong = await trainStage(
      dataset,
      log,
      `amr eps ${epsilon} (long)`,
      amr,
      {
        ...long,
        adversarial: {
          adversary: 'fgm',
          epsilon: epsilon * rowNorm,
          adversarialWeight: 1,
          surfaces: [ITEM_FEATURES],
        },
      },
      epochs,
      { adversarial: true, state: vbprRun.state },
    );
    const amrResult = await evaluateAtTen(amr);
    const versusLongContinued = versus(continuedResult)(amrResult);
    const lastOf = (record: Record<string, unknown>): number => {
      const curve = record.curve as { value: number }[];
      return curve[curve.length - 1]!.value;
    };
    return {
      dataset: summary,
      protocol:
        "as amr-grid: MF-BPR (L2 1e-4) -> VBPR (128 principal components, MF's Adagrad state) -> from VBPR's best parameters and Adagrad state, VBPR continued and AMR (FGM on the item features, lambda 1, epsilon relative to the prepared row norm) for the same epochs with no early stopping, validation NDCG@20 (full ranking) every 5 epochs; test (999 sampled negatives) at each arm's best validation epoch, paired t-test",
      epochs,
      relativeEpsilon: epsilon,
      vbpr: { ...vbprRun.record, sensitivity: vbpr.featureSensitivity() },
      shortVbprContinued: { ...continuedRun.record, test: reference.metrics },
      vbprContinued: {
        ...continuedLong.record,
        lastValidation: lastOf(continuedLong.record),
        test: continuedResult.metrics,
        sensitivity: continued.featureSensitivity(),
      },
      amr: {
        ...amrLong.record,
        lastValidation: lastOf(amrLong.record),
        test: amrResult.metrics,
        sensitivity: amr.featureSensitivity(),
        versusLongVbprContinued: versusLongContinued,
        versusShortVbprContinued: versusContinued(amrResult),
      },
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
