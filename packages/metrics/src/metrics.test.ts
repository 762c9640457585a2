import { generateSampledTestSet, type Dataset } from '@advrec/data';
import { describe, expect, it } from 'vitest';
import { evaluateFullRanking, evaluateSampled, factorizedScorer, TIE_RULE } from './index.js';
import { handDataset } from './test-support/models.js';

/** A hand-made data set over 8 items. */
function tiny(test: number[][], train: number[][]): Dataset {
  return handDataset('tiny', 8, train, test);
}

/** Scores = itemBias only (dimension 1, zero user factors), so every user sees the same order. */
function fixedScores(numUsers: number, scores: number[]) {
  return factorizedScorer({
    userFactors: new Float32Array(numUsers),
    itemFactors: new Float32Array(scores.length),
    dimension: 1,
    itemBias: Float32Array.from(scores),
  });
}

describe('metrics, hand-computed (full ranking)', () => {
  // Item scores 8 > 7 > ... > 1: item 0 first. User 0 trains on item 1 (excluded), tests on items 2 and 5.
  // Candidates in order: 0, 2, 3, 4, 5, 6, 7 -> relevant at positions 2 and 5.
  const dataset = tiny([[2, 5]], [[1]]);
  const scorer = fixedScores(1, [8, 7, 6, 5, 4, 3, 2, 1]);

  it('gives HR, Recall, Precision, NDCG, MRR, MAP and AUC from their definitions', async () => {
    const r = await evaluateFullRanking(scorer, dataset, {
      cutoffs: [1, 2, 5],
      metrics: ['hr', 'recall', 'precision', 'ndcg', 'mrr', 'map', 'auc'],
      engine: 'js',
      threads: 1,
    });
    const l = (p: number) => 1 / Math.log2(p + 1);
    expect(r.metrics['hr@1']).toBe(0);
    expect(r.metrics['hr@2']).toBe(1);
    expect(r.metrics['recall@2']).toBe(0.5);
    expect(r.metrics['recall@5']).toBe(1);
    expect(r.metrics['precision@2']).toBe(0.5);
    expect(r.metrics['precision@5']).toBe(0.4);
    expect(r.metrics['ndcg@1']).toBe(0);
    expect(r.metrics['ndcg@2']).toBeCloseTo(l(2) / (l(1) + l(2)), 15);
    expect(r.metrics['ndcg@5']).toBeCloseTo((l(2) + l(5)) / (l(1) + l(2)), 15);
    expect(r.metrics['mrr@1']).toBe(0);
    expect(r.metrics['mrr@5']).toBe(0.5);
    expect(r.metrics['map@2']).toBeCloseTo(0.5 / 2, 15); // hit at 2: precision 1/2, over min(2, 2)
    expect(r.metrics['map@5']).toBeCloseTo((1 / 2 + 2 / 5) / 2, 15);
    // AUC: 5 non-relevant candidates (0, 3, 4, 6, 7); item 2 beats 4 of them, item 5 beats 2.
    expect(r.metrics['auc']).toBeCloseTo((4 / 5 + 2 / 5) / 2, 15);
    expect(r.coverage['coverage@1']).toBe(1 / 8);
    expect(r.protocol.tieRule).toBe(TIE_RULE);
    expect(r.protocol.excluded).toEqual(['train', 'validation']);
  });

  it('never ranks a training item: excluding train moves the relevant items up', async () => {
    const withTrain = await evaluateFullRanking(scorer, dataset, {
      cutoffs: [2],
      engine: 'js',
      threads: 1,
      keepTopLists: true,
    });
    expect(Array.from(withTrain.topLists!)).toEqual([0, 2]);
  });

  it('ranks a relevant item below every candidate it ties with (pessimistic)', async () => {
    // Items 0..3 all score 1; user tests on item 0 (the smallest id, yet ranked after the other three).
    const ties = await evaluateFullRanking(
      fixedScores(1, [1, 1, 1, 1, 0, 0, 0, 0]),
      tiny([[0]], [[]]),
      {
        cutoffs: [3, 4],
        metrics: ['hr', 'mrr', 'auc'],
        engine: 'js',
        threads: 1,
      },
    );
    expect(ties.metrics['hr@3']).toBe(0);
    expect(ties.metrics['hr@4']).toBe(1);
    expect(ties.metrics['mrr@4']).toBe(1 / 4);
    expect(ties.metrics['auc']).toBeCloseTo(4 / 7, 15); // 3 tied items count against it
  });
});

describe('metrics, hand-computed (sampled)', () => {
  it('ranks the positive among its negatives only, ties against it', async () => {
    const dataset = tiny([[3], [6]], [[0], [1]]);
    const scorer = fixedScores(2, [9, 8, 7, 6, 5, 5, 4, 3]);
    // Case 0: positive 3 (score 6) vs negatives 1 (8), 4 (5), 7 (3): rank 2.
    // Case 1: positive 6 (score 4) vs negatives 4 (5), 5 (5), 2 (7): rank 4.
    const set = {
      users: Int32Array.from([0, 1]),
      positives: Int32Array.from([3, 6]),
      negatives: Int32Array.from([1, 4, 7, 4, 5, 2]),
      negativesPerCase: 3,
      numCases: 2,
      source: 'hand',
    };
    const r = await evaluateSampled(scorer, dataset, set, {
      cutoffs: [1, 3],
      metrics: ['hr', 'ndcg', 'mrr', 'auc'],
    });
    expect(Array.from(r.perUser['hr@3']!)).toEqual([1, 0]);
    expect(Array.from(r.perUser['ndcg@3']!)).toEqual([1 / Math.log2(3), 0]);
    expect(Array.from(r.perUser['mrr@3']!)).toEqual([0.5, 0]);
    expect(r.perUser['auc']![0]).toBeCloseTo(2 / 3, 15);
    expect(r.perUser['auc']![1]).toBe(0);
    expect(r.protocol).toMatchObject({
      kind: 'sampled',
      candidates: '1 positive + 3 sampled negatives',
      negativesPerCase: 3,
      usersEvaluated: 2,
    });
  });

  it('gives the same numbers as the full protocol when the negatives are every other item', async () => {
    const dataset = tiny([[3]], [[0]]);
    const scorer = fixedScores(1, [1, 5, 2, 4, 8, 3, 7, 6]);
    const set = generateSampledTestSet(dataset, { negatives: 6, seed: 1 });
    const sampled = await evaluateSampled(scorer, dataset, set, { cutoffs: [1, 2, 3, 5] });
    const full = await evaluateFullRanking(scorer, dataset, {
      cutoffs: [1, 2, 3, 5],
      engine: 'js',
      threads: 1,
    });
    expect(sampled.metrics).toEqual(full.metrics);
  });
});
