/**
 * `pnpm bench quality-amr-recipe`: the AMR recipe of `quality-ml1m-posters` (the library's
 * `runAmrExperiment` with its defaults) on two more feature sets, to see whether the
 * ordering holds beyond one set of features:
 *
 * - ML-1M (the same protocol: random leave-one-out, 10% of movies cold, a fifth of the users
 *   by default) with a second set of real image features built here: the shared
 *   MobileNetV2's classifier output (`output`, 1000 ImageNet logits per poster), a different
 *   layer from the pooled `627` the main benchmark uses;
 * - the synthetic set whose preferences are planted through 32-d item features, where VBPR
 *   must beat MF-BPR if the model and recipe are right.
 *
 * Environment: ADVREC_RECIPE_USERS (0.2), and the epoch and epsilon variables of
 * `quality-ml1m-posters`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alignItemFeatures, generateSynthetic, holdOutValidation, leaveOneOut } from '@advrec/data';
import type { BenchAbout, BenchContext, BenchOptionSpec, BenchOptionValues } from '../context.js';
import { amrRecipe, buildDataset, posterFeatures } from './quality-ml1m-posters.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
export const about: BenchAbout = {
  kind: 'quality',
  what: "the same recipe on a second real feature set (ML-1M posters through MobileNetV2's 1000 logits, a fifth of the users) and on the synthetic set with preferences planted through 32-d features",
  figures: 'per set, the fields of `quality-ml1m-posters`',
};

const SYNTHETIC_DIMENSION = 32;

/** Options (`pnpm bench quality-amr-recipe --users 0.2`). */
export const options = {
  users: {
    description: 'share of the ML-1M users kept for the MobileNetV2-logits run',
    default: 0.2,
  },
} satisfies BenchOptionSpec;

export async function run(context: BenchContext): Promise<Record<string, unknown>> {
  const { sharedData, log } = context;
  const o = context.options as BenchOptionValues<typeof options>;
  const directory = await mkdtemp(join(tmpdir(), 'advrec-amr-recipe-'));
  try {
    const fraction = o.users;
    const ml1m = await buildDataset(sharedData, directory, fraction);
    const logits = await posterFeatures(sharedData, ml1m, log, 'output');
    const ml1mLogits = await amrRecipe(ml1m, logits, {
      log: (line) => log(`ml-1m logits: ${line}`),
      userFraction: fraction,
      protocol:
        'as quality-ml1m-posters (random leave-one-out, 10% of movies cold, validation carved from train, 999 sampled negatives), on a seeded fraction of the users',
      features: {
        model: logits.manifest.model,
        tensor: logits.manifest.tensor,
        pooling: logits.manifest.pooling,
        dimension: logits.dimension,
        itemsWithoutPoster: logits.missing,
        failedImages: logits.manifest.failed,
        what: "MobileNetV2's classifier output: 1000 ImageNet logits per poster",
      },
    });

    const synthetic = generateSynthetic({
      users: 2000,
      items: 1500,
      featureDimension: SYNTHETIC_DIMENSION,
      seed: 3,
    });
    const dataset = holdOutValidation(leaveOneOut(synthetic.log, { order: 'random', seed: 3 }), {
      seed: 3,
    });
    const rows = synthetic.itemFeatures!.length / SYNTHETIC_DIMENSION;
    // The generator's rows follow its item ids i0, i1, ...; the split keeps items with interactions.
    const planted = alignItemFeatures(
      {
        data: synthetic.itemFeatures!,
        rows,
        dimension: SYNTHETIC_DIMENSION,
        fileType: 'float32',
        source: 'synthetic',
      },
      dataset.itemIdMap,
      { rowIds: Array.from({ length: rows }, (_, i) => `i${i}`) },
    );
    const syntheticResult = await amrRecipe(
      dataset,
      { data: planted.matrix, dimension: SYNTHETIC_DIMENSION },
      {
        log: (line) => log(`synthetic: ${line}`),
        protocol:
          'generateSynthetic (2,000 users, 1,500 items, rank 8, seed 3; features W q_i + noise, 32-d), random leave-one-out, validation carved from train, 999 sampled negatives',
        features: {
          dimension: SYNTHETIC_DIMENSION,
          what: 'planted: a noisy linear image of the true item factors',
        },
      },
    );
    return { ml1mLogits, synthetic: syntheticResult };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
