import {
  givenSplit,
  holdOutValidation,
  leaveOneOut,
  readMovieLens100K,
  readUserItemLists,
  type Dataset,
} from '@advrec/data';
import { describe, expect, it } from 'vitest';
import { loadOnnxRuntime } from '@advrec/onnx';
import {
  evaluateBruteForce,
  evaluateFullRanking,
  factorizedScorer,
  type EvaluationResult,
  type FullRankingOptions,
  type MetricName,
  type Scorer,
} from './index.js';
import { fittedModel, opaque, randomModel, sampleUsers } from './test-support/models.js';
import { gowallaTest, gowallaTrain, movielens100k } from './test-support/paths.js';

const hasOnnx = (await loadOnnxRuntime()).available;
const ml100k = holdOutValidation(leaveOneOut(await readMovieLens100K(movielens100k), { seed: 3 }));
const gowallaSample = sampleUsers(
  givenSplit(await readUserItemLists(gowallaTrain), await readUserItemLists(gowallaTest)),
  100,
);
const cutoffs = [1, 5, 20, 50];
const metrics: MetricName[] = ['hr', 'recall', 'precision', 'ndcg', 'mrr', 'map'];

const references = new Map<string, ReturnType<typeof evaluateBruteForce>>();
async function expectSameAsReference(
  scorer: Scorer,
  dataset: Dataset,
  result: EvaluationResult,
  withAuc = false,
) {
  // The reference is slow on purpose: computed once per (model, data set, metric set).
  const key = `${dataset.name}|${withAuc}|${(scorer as { id?: string }).id ?? ''}`;
  if (!references.has(key))
    references.set(
      key,
      evaluateBruteForce(scorer, dataset, {
        cutoffs,
        metrics: withAuc ? [...metrics, 'auc'] : metrics,
      }),
    );
  const reference = await references.get(key)!;
  expect(result.users).toEqual(reference.users);
  expect(result.topLists).toEqual(reference.topLists);
  for (const [key, values] of Object.entries(reference.perUser)) {
    const mine = result.perUser[key]!;
    let worst = 0;
    for (let b = 0; b < values.length; b++)
      worst = Math.max(worst, Math.abs(mine[b]! - values[b]!));
    expect(worst, key).toBeLessThan(1e-12);
  }
}

/** Every cutoff and metric of `scorer` on ML-100K, top lists kept, with `options`. */
function rankMl100k(scorer: Scorer, options: FullRankingOptions): Promise<EvaluationResult> {
  return evaluateFullRanking(scorer, ml100k, { ...options, cutoffs, metrics, keepTopLists: true });
}

const variants: [string, FullRankingOptions][] = [
  ['js, 1 thread, block 1', { engine: 'js', threads: 1, blockSize: 1 }],
  ['js, 2 threads, block 7', { engine: 'js', threads: 2, blockSize: 7 }],
  ['js, 3 threads, block 64', { engine: 'js', threads: 3, blockSize: 64 }],
  ...(hasOnnx
    ? ([
        ['onnxruntime, 1 thread, block 1', { engine: 'onnxruntime', threads: 1, blockSize: 1 }],
        [
          'onnxruntime, 2 threads, block 100',
          { engine: 'onnxruntime', threads: 2, blockSize: 100 },
        ],
        [
          'onnxruntime, 2 threads, block 4096',
          { engine: 'onnxruntime', threads: 2, blockSize: 4096 },
        ],
      ] as [string, FullRankingOptions][])
    : []),
];

describe('fast evaluator = brute-force reference, MovieLens-100K leave-one-out (random MF, K=16)', () => {
  const scorer = randomModel(ml100k.numUsers, ml100k.numItems, 16, 1, true);

  it.each(variants)('%s', async (_name, options) => {
    const result = await evaluateFullRanking(scorer, ml100k, {
      ...options,
      cutoffs,
      metrics,
      keepTopLists: true,
    });
    expect(result.protocol.engine).toBe(
      options.engine === 'onnxruntime'
        ? 'onnxruntime'
        : options.threads === 1
          ? 'js'
          : 'js-workers',
    );
    await expectSameAsReference(scorer, ml100k, result);
  });

  it('the generic scoreAll path (a model without factors), blocks of 1 and 100', async () => {
    for (const blockSize of [1, 100]) {
      const result = await evaluateFullRanking(opaque(scorer), ml100k, {
        cutoffs,
        metrics,
        blockSize,
        keepTopLists: true,
      });
      expect(result.protocol.engine).toBe('score-all');
      await expectSameAsReference(scorer, ml100k, result);
    }
  });

  it('AUC (full ranks) on worker threads and on the main thread', async () => {
    for (const threads of [1, 2]) {
      const result = await evaluateFullRanking(scorer, ml100k, {
        cutoffs,
        metrics: [...metrics, 'auc'],
        threads,
        keepTopLists: true,
      });
      await expectSameAsReference(scorer, ml100k, result, true);
    }
  });

  it('evaluates validation against train only', async () => {
    const result = await evaluateFullRanking(scorer, ml100k, {
      split: 'validation',
      cutoffs: [10],
      engine: 'js',
      threads: 1,
    });
    const reference = await evaluateBruteForce(scorer, ml100k, {
      split: 'validation',
      cutoffs: [10],
    });
    expect(result.users).toEqual(reference.users);
    result.perUser['ndcg@10']!.forEach((v, b) =>
      expect(v).toBeCloseTo(reference.perUser['ndcg@10']![b]!, 12),
    );
    expect(result.protocol.excluded).toEqual(['train']);
  });
});

describe('fast evaluator = brute-force reference, Gowalla sample (299 users x 40,981 items, several test items each)', () => {
  const scorer = randomModel(gowallaSample.numUsers, gowallaSample.numItems, 8, 2);

  it.each(variants.filter(([name]) => !name.includes('block 1,') && !name.endsWith('block 1')))(
    '%s',
    async (_name, options) => {
      const result = await evaluateFullRanking(scorer, gowallaSample, {
        ...options,
        cutoffs,
        metrics,
        keepTopLists: true,
      });
      expect(result.protocol.usersEvaluated).toBe(gowallaSample.numUsers);
      await expectSameAsReference(scorer, gowallaSample, result);
    },
  );
});

describe('massive ties (a popularity-like model with 3 distinct scores)', () => {
  it('every engine agrees with the reference, the onnxruntime path falling back to exact ranking', async () => {
    const scores = Float32Array.from({ length: ml100k.numItems }, (_, i) => i % 3);
    const scorer = Object.assign(
      factorizedScorer({
        userFactors: new Float32Array(ml100k.numUsers),
        itemFactors: new Float32Array(ml100k.numItems),
        dimension: 1,
        itemBias: scores,
      }),
      { id: 'ties' },
    );
    for (const [, options] of variants) {
      const result = await rankMl100k(scorer, options);
      await expectSameAsReference(scorer, ml100k, result);
      // With ties at the top most users cannot be certified from float32 and are ranked
      // exactly (only users whose larger k reaches below the tied block are certified).
      if (options.engine === 'onnxruntime') {
        expect(result.protocol.exactFallbackUsers).toBeGreaterThan(
          result.protocol.usersEvaluated / 2,
        );
      }
    }
  });
});

describe.runIf(hasOnnx)('onnxruntime engine', () => {
  it('is the default for factorized models when installed', async () => {
    const result = await evaluateFullRanking(
      randomModel(ml100k.numUsers, ml100k.numItems, 4, 9),
      ml100k,
    );
    expect(result.protocol.engine).toBe('onnxruntime');
  });

  const onnxVariants = variants.filter(([name]) => name.startsWith('onnxruntime'));

  it('ranks a fitted model, whose training items crowd every list, from the long lists of pass 2', async () => {
    const scorer = Object.assign(fittedModel(ml100k, 16, 4), { id: 'fitted' });
    for (const [name, options] of onnxVariants) {
      const result = await rankMl100k(scorer, options);
      await expectSameAsReference(scorer, ml100k, result);
      // Pass 1 gives up on the crowded tiers after their first block, so many users reach
      // pass 2 (415 of 943 with blocks of 100).
      expect(result.protocol.secondPassUsers, name).toBeGreaterThan(
        result.protocol.usersEvaluated / 4,
      );
    }
  });

  it('ranks a random model from the short lists of pass 1 (Gowalla sample, top-20)', async () => {
    const scorer = Object.assign(
      randomModel(gowallaSample.numUsers, gowallaSample.numItems, 8, 5),
      {
        id: 'random-top20',
      },
    );
    const result = await evaluateFullRanking(scorer, gowallaSample, {
      engine: 'onnxruntime',
      threads: 2,
      cutoffs: [20],
      metrics: ['ndcg', 'recall'],
      keepTopLists: true,
    });
    const reference = await evaluateBruteForce(scorer, gowallaSample, {
      cutoffs: [20],
      metrics: ['ndcg', 'recall'],
    });
    expect(result.topLists).toEqual(reference.topLists);
    expect(result.protocol.secondPassUsers).toBeLessThan(result.protocol.usersEvaluated * 0.05);
  });
});
