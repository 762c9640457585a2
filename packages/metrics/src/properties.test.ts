import type { Dataset } from '@advrec/data';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  evaluateBruteForce,
  evaluateFullRanking,
  factorizedScorer,
  type FullRankingOptions,
} from './index.js';
import { handDataset } from './test-support/models.js';

interface Case {
  numItems: number;
  rows: { train: number[]; test: number[]; scores: number[] }[];
}

/** Small worlds: up to 6 users, 2..12 items, integer scores in 0..4 (many ties). */
const worlds = fc.integer({ min: 2, max: 12 }).chain((numItems) =>
  fc.record({
    numItems: fc.constant(numItems),
    rows: fc.array(
      fc
        .tuple(
          fc.array(fc.integer({ min: 0, max: 2 }), { minLength: numItems, maxLength: numItems }), // 0 none, 1 train, 2 test
          fc.array(fc.integer({ min: 0, max: 4 }), { minLength: numItems, maxLength: numItems }),
          fc.integer({ min: 0, max: numItems - 1 }),
        )
        .map(([roles, scores, forced]) => {
          roles[forced] = 2; // at least one test item
          return {
            train: roles.flatMap((r, i) => (r === 1 ? [i] : [])),
            test: roles.flatMap((r, i) => (r === 2 ? [i] : [])),
            scores,
          };
        }),
      { minLength: 1, maxLength: 6 },
    ),
  }),
);

function build(world: Case): { dataset: Dataset; scorer: ReturnType<typeof factorizedScorer> } {
  const { numItems, rows } = world;
  const dataset = handDataset(
    'property world',
    numItems,
    rows.map((r) => r.train),
    rows.map((r) => r.test),
  );
  // score(u, i) = scores[u][i]: user factors are the score rows, item factors the identity.
  const identity = new Float32Array(numItems * numItems);
  for (let i = 0; i < numItems; i++) identity[i * numItems + i] = 1;
  const scorer = factorizedScorer({
    userFactors: Float32Array.from(rows.flatMap((r) => r.scores)),
    itemFactors: identity,
    dimension: numItems,
  });
  return { dataset, scorer };
}

const cutoffs = [1, 2, 3, 5, 8];
const options: FullRankingOptions = {
  cutoffs,
  metrics: ['hr', 'recall', 'precision', 'ndcg', 'mrr', 'map', 'auc'],
  engine: 'js',
  threads: 1,
};

describe('metric properties (fast-check)', () => {
  it('every per-user value is in [0, 1]; HR and Recall never decrease with K', async () => {
    await fc.assert(
      fc.asyncProperty(worlds, async (world) => {
        const { dataset, scorer } = build(world);
        const result = await evaluateFullRanking(scorer, dataset, options);
        for (const values of Object.values(result.perUser))
          for (const v of values) expect(v >= 0 && v <= 1).toBe(true);
        for (const metric of ['hr', 'recall']) {
          for (let c = 1; c < cutoffs.length; c++) {
            const lower = result.perUser[`${metric}@${cutoffs[c - 1]}`]!;
            const higher = result.perUser[`${metric}@${cutoffs[c]}`]!;
            lower.forEach((v, b) => expect(higher[b]!).toBeGreaterThanOrEqual(v));
          }
        }
      }),
      { numRuns: 150, seed: 42 },
    );
  });

  it('a perfect ranking gives NDCG = 1, MAP = 1, MRR = 1, AUC = 1 at every K', async () => {
    await fc.assert(
      fc.asyncProperty(worlds, async (world) => {
        // Relevant items strictly above everything else, whatever the ties among them.
        const perfect = {
          ...world,
          rows: world.rows.map((r) => ({
            ...r,
            scores: r.scores.map((s, i) => (r.test.includes(i) ? 10 + s : s)),
          })),
        };
        const { dataset, scorer } = build(perfect);
        const result = await evaluateFullRanking(scorer, dataset, options);
        for (const k of cutoffs) {
          for (const metric of ['ndcg', 'map', 'mrr', 'hr'])
            result.perUser[`${metric}@${k}`]!.forEach((v) => expect(v).toBeCloseTo(1, 12));
        }
        result.perUser['auc']!.forEach((v) => expect(v).toBe(1));
      }),
      { numRuns: 100, seed: 7 },
    );
  });

  it('excluding training items never lowers HR (or Recall)', async () => {
    await fc.assert(
      fc.asyncProperty(worlds, async (world) => {
        const { dataset, scorer } = build(world);
        const excluded = await evaluateFullRanking(scorer, dataset, options);
        const included = await evaluateFullRanking(scorer, dataset, { ...options, exclude: [] });
        for (const k of cutoffs) {
          for (const metric of ['hr', 'recall']) {
            const a = excluded.perUser[`${metric}@${k}`]!;
            const b = included.perUser[`${metric}@${k}`]!;
            a.forEach((v, u) => expect(v).toBeGreaterThanOrEqual(b[u]!));
          }
        }
      }),
      { numRuns: 150, seed: 11 },
    );
  });
  it('equals the brute-force reference for any block size and thread count', async () => {
    await fc.assert(
      fc.asyncProperty(
        worlds,
        fc.integer({ min: 1, max: 7 }),
        fc.constantFrom(1, 1, 2, 3),
        async (world, blockSize, threads) => {
          const { dataset, scorer } = build(world);
          const metrics = options.metrics!;
          const reference = await evaluateBruteForce(scorer, dataset, { cutoffs, metrics });
          const result = await evaluateFullRanking(scorer, dataset, {
            ...options,
            blockSize,
            threads,
            keepTopLists: true,
          });
          expect(result.protocol.engine).toBe(threads > 1 ? 'js-workers' : 'js');
          expect(Array.from(result.users)).toEqual(Array.from(reference.users));
          expect(Array.from(result.topLists!)).toEqual(Array.from(reference.topLists));
          for (const [key, values] of Object.entries(reference.perUser)) {
            const fast = result.perUser[key]!;
            values.forEach((v, b) => expect(fast[b]!).toBeCloseTo(v, 12));
          }
        },
      ),
      { numRuns: 60, seed: 2026 },
    );
  });
});
