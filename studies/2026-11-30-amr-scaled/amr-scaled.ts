/**
 * `pnpm bench amr-scaled` (about 10 minutes): does AMR beat VBPR continued on ML-1M posters
 * once shrinking E no longer weakens the attack? `amr-diagnosis` found that AMR defends
 * against FGM on the item features by shrinking the projection E (the perturbation reaches
 * the scores only through `E delta`), and that holding E's norm fixed makes E turn away from
 * the users instead. Here E is free, but the attack follows it: before every epoch the
 * feature epsilon is rescaled by `||E_0|| / ||E_t||` (E's Frobenius norm at the start of AMR
 * over its norm now), so the perturbation's effect on the scores keeps its size whatever
 * E's scale. Same protocol as `amr-diagnosis` (a third of the users, 128 principal
 * components, VBPR from MF, 10 epochs from VBPR's parameters and Adagrad state); each arm is
 * compared with VBPR continued on test (paired t-test), with E's norm and the epsilons used.
 * Environment: ADVREC_USER_FRACTION (0.33), ADVREC_AMR_EPOCHS (10), ADVREC_AMR_EPSILONS (0.1,1).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ITEM_FEATURES } from '@advrec/models';
import type { ParameterTable } from '@advrec/models';
import type { BenchContext } from '../../bench/src/context.js';
import {
  env,
  postersSetup,
  trainStage,
  vbprChainStart,
} from '../../bench/src/lib/posters-setup.js';

const frobenius = (table: ParameterTable): number =>
  Math.sqrt(table.values.reduce((s, v) => s + v * v, 0));

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const directory = await mkdtemp(join(tmpdir(), 'advrec-amr-scaled-'));
  try {
    const fraction = env('ADVREC_USER_FRACTION', 0.33);
    const setup = await postersSetup(sharedData, directory, fraction, log);
    const { dataset, summary, evaluateAtTen } = setup;
    const epochs = env('ADVREC_AMR_EPOCHS', 10);
    const { vbpr, vbprRun, continued, continuedRun, reference, copy, versusContinued } =
      await vbprChainStart(setup, log, epochs);
    const rowNorm = vbpr.featureTransform.rowNorm;
    const arms: Record<string, unknown>[] = [];
    for (const epsilon of (process.env.ADVREC_AMR_EPSILONS ?? '0.1,1').split(',').map(Number)) {
      const amr = copy();
      const start = frobenius(amr.featureProjection);
      // One epoch at a time, each with the epsilon rescaled to E's current norm; the
      // optimiser state goes from one epoch's trainer to the next. No early stopping: the
      // same epochs as VBPR continued, the last epoch's tables.
      let state = vbprRun.state;
      const perEpoch: { epoch: number; projectionNorm: number; absoluteEpsilon: number }[] = [];
      for (let epoch = 0; epoch < epochs; epoch++) {
        const norm = frobenius(amr.featureProjection);
        const absolute = epsilon * rowNorm * (start / Math.max(norm, 1e-12));
        const stage = await trainStage(
          dataset,
          log,
          `amr scaled eps ${epsilon} epoch ${epoch + 1}`,
          amr,
          {
            seed: 1 + epoch,
            batchSize: 512,
            l2: 0.0001,
            adversarial: {
              adversary: 'fgm',
              epsilon: absolute,
              adversarialWeight: 1,
              surfaces: [ITEM_FEATURES],
            },
          },
          1,
          { adversarial: true, state },
        );
        state = stage.state;
        perEpoch.push({ epoch: epoch + 1, projectionNorm: norm, absoluteEpsilon: absolute });
      }
      const result = await evaluateAtTen(amr);
      const arm = {
        relativeEpsilon: epsilon,
        featureProjectionNorm: { start, end: frobenius(amr.featureProjection) },
        perEpoch,
        test: result.metrics,
        versusVbprContinued: versusContinued(result),
      };
      log(`scaled eps ${epsilon}: ${JSON.stringify(arm)}`);
      arms.push(arm);
    }
    return {
      dataset: summary,
      protocol:
        "as amr-diagnosis: MF-BPR (L2 1e-4) -> VBPR (128 principal components) -> from VBPR's best parameters and Adagrad state, VBPR continued (early stopping, best epoch) and AMR whose feature epsilon is rescaled before every epoch by ||E_0|| / ||E_t|| (no early stopping, last epoch), lambda 1; test on 999 sampled negatives, paired t-tests against VBPR continued",
      featureRowNorm: rowNorm,
      vbprContinued: {
        ...continuedRun.record,
        test: reference.metrics,
        featureProjectionNorm: frobenius(continued.featureProjection),
      },
      arms,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
