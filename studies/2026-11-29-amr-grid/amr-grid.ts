/**
 * `pnpm bench amr-grid` (about 30 minutes): AMR's epsilon and lambda tuned on validation the
 * way the AMR paper tunes them (Section 5.1: lambda fixed at 1, epsilon in {0.01, 0.1, 1, 10};
 * then lambda in {0.01, 0.1, 1, 10} at the best epsilon; a best value on the grid's boundary
 * extends the grid one step further), on ML-1M posters with the AMR protocol of
 * `quality-ml1m-posters` on a fraction of the users (as `amr-diagnosis`). MF-BPR, VBPR from
 * it (128 principal components), then from VBPR's best parameters and Adagrad state: VBPR
 * continued and every AMR arm, the same epochs each. Epsilon is relative to the prepared
 * features' mean row norm. Reports every arm's best validation NDCG@20, its test HR/NDCG@10
 * against VBPR continued (paired t-test over the test cases) and E's norm; the arm chosen on
 * validation is the answer, the others show how flat or steep the grid is. Environment:
 * ADVREC_USER_FRACTION (0.33), ADVREC_MF_EPOCHS (200), ADVREC_VBPR_EPOCHS (20),
 * ADVREC_AMR_EPOCHS (10).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ITEM_FEATURES } from '@advrec/models';
import type { VisualBPR } from '@advrec/models';
import type { BenchContext } from '../../bench/src/context.js';
import {
  env,
  postersSetup,
  trainStage,
  vbprChainStart,
} from '../../bench/src/lib/posters-setup.js';

/** One AMR arm of the grid. */
interface Arm {
  readonly epsilon: number;
  readonly adversarialWeight: number;
  readonly bestValidationNdcg20: number;
  readonly record: Record<string, unknown>;
  readonly test: Record<string, number>;
  readonly versusVbprContinued: Record<string, { relativeChange: number; pValue: number }>;
  readonly featureProjectionNorm: number;
}

const GRID = [0.01, 0.1, 1, 10];

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const directory = await mkdtemp(join(tmpdir(), 'advrec-amr-grid-'));
  try {
    const fraction = env('ADVREC_USER_FRACTION', 0.33);
    const setup = await postersSetup(sharedData, directory, fraction, log);
    const { dataset, summary, evaluateAtTen } = setup;
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
    const projectionNorm = (model: VisualBPR): number =>
      Math.sqrt(model.featureProjection.values.reduce((s, v) => s + v * v, 0));
    const arms = new Map<string, Arm>();
    const train = async (epsilon: number, adversarialWeight: number): Promise<Arm> => {
      const key = `${epsilon}/${adversarialWeight}`;
      const done = arms.get(key);
      if (done) return done;
      const amr = copy();
      const stage = await trainStage(
        dataset,
        log,
        `amr eps ${epsilon} lambda ${adversarialWeight}`,
        amr,
        {
          ...base,
          adversarial: {
            adversary: 'fgm',
            epsilon: epsilon * rowNorm,
            adversarialWeight,
            surfaces: [ITEM_FEATURES],
          },
        },
        epochs,
        { adversarial: true, state: vbprRun.state },
      );
      const result = await evaluateAtTen(amr);
      const arm: Arm = {
        epsilon,
        adversarialWeight,
        bestValidationNdcg20: stage.record.bestValidationNdcg20 as number,
        record: stage.record,
        test: { ...result.metrics },
        versusVbprContinued: versusContinued(result),
        featureProjectionNorm: projectionNorm(amr),
      };
      log(`${key}: ${JSON.stringify(arm)}`);
      arms.set(key, arm);
      return arm;
    };
    const best = (list: readonly Arm[]): Arm =>
      list.reduce((a, b) => (b.bestValidationNdcg20 > a.bestValidationNdcg20 ? b : a));
    /** Tries `values` of one hyper-parameter, extending the grid once past a best boundary. */
    const sweep = async (
      values: readonly number[],
      make: (v: number) => Promise<Arm>,
      valueOf: (arm: Arm) => number,
    ): Promise<{ tried: Arm[]; winner: Arm }> => {
      const tried: Arm[] = [];
      for (const v of values) tried.push(await make(v));
      const value = valueOf(best(tried));
      const beyond =
        value === Math.min(...values) ? value / 10 : value === Math.max(...values) ? value * 10 : 0;
      if (beyond > 0) tried.push(await make(beyond));
      return { tried, winner: best(tried) };
    };
    const stage1 = await sweep(
      GRID,
      (epsilon) => train(epsilon, 1),
      (arm) => arm.epsilon,
    );
    const epsilon = stage1.winner.epsilon;
    const stage2 = await sweep(
      GRID,
      (weight) => train(epsilon, weight),
      (arm) => arm.adversarialWeight,
    );
    const chosen = best([...arms.values()]);
    return {
      dataset: summary,
      protocol:
        "as amr-diagnosis: MF-BPR (L2 1e-4) -> VBPR (128 principal components) -> from VBPR's best parameters and Adagrad state, VBPR continued and each AMR arm (FGM on the item features) for the same epochs, best validation epoch kept; epsilon relative to the prepared features' mean row norm; the AMR paper's grid (lambda 1 and epsilon in {0.01, 0.1, 1, 10}, then lambda in {0.01, 0.1, 1, 10} at the best epsilon, a best boundary value extended one step); the arm chosen on validation NDCG@20 (full ranking) is compared with VBPR continued on test (999 sampled negatives, paired t-test)",
      featureRowNorm: rowNorm,
      mfBpr: mfRun.record,
      vbpr: vbprRun.record,
      vbprContinued: {
        ...continuedRun.record,
        test: reference.metrics,
        featureProjectionNorm: projectionNorm(continued),
      },
      epsilonStage: stage1.tried.map((a) => a.epsilon),
      lambdaStage: stage2.tried.map((a) => a.adversarialWeight),
      arms: [...arms.values()],
      chosenOnValidation: {
        epsilon: chosen.epsilon,
        adversarialWeight: chosen.adversarialWeight,
        validationVersusVbprContinued:
          chosen.bestValidationNdcg20 / (continuedRun.record.bestValidationNdcg20 as number) - 1,
        test: chosen.test,
        versusVbprContinued: chosen.versusVbprContinued,
      },
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
