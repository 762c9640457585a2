import { describe, expect, it } from 'vitest';
import { EvaluationError, pairedTTest, wilcoxonSignedRank } from './index.js';

// Expected values from SciPy 1.x (scipy.stats.ttest_rel / wilcoxon) on the same vectors.
const a = [0.61, 0.42, 0.55, 0.7, 0.38, 0.49, 0.66, 0.52, 0.47, 0.58];
const b = [0.55, 0.4, 0.51, 0.61, 0.4, 0.45, 0.6, 0.5, 0.41, 0.57];
// Per-user hits (HR@K) of two models on 60 users.
const hitsA = Array.from({ length: 3 }, () => [
  1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1,
]).flat();
const hitsB = Array.from({ length: 3 }, () => [
  0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1,
]).flat();

describe('pairedTTest', () => {
  it('matches scipy.stats.ttest_rel', () => {
    const r = pairedTTest(a, b);
    expect(r.t).toBeCloseTo(3.808472697252047, 10);
    expect(r.degreesOfFreedom).toBe(9);
    expect(r.pValue).toBeCloseTo(0.004162868782647468, 10);
  });

  it('matches on 60 binary per-user hits (HR@K of two models)', () => {
    const r = pairedTTest(hitsA, hitsB);
    expect(r.t).toBeCloseTo(5.028490259085155, 10);
    expect(r.pValue).toBeCloseTo(4.91138209979863e-6, 12);
  });

  it('documents the degenerate cases instead of returning NaN', () => {
    expect(pairedTTest([1, 2, 3], [1, 2, 3])).toMatchObject({ t: 0, pValue: 1 });
    expect(pairedTTest([2, 3, 4], [1, 2, 3])).toMatchObject({ t: Infinity, pValue: 0 });
    expect(() => pairedTTest([1, 2], [1])).toThrow(EvaluationError);
    expect(() => pairedTTest([1], [1])).toThrow(/at least 2 pairs/);
    expect(() => pairedTTest([1, Number.NaN], [1, 2])).toThrow(/pair 1 is not finite/);
  });
});

describe('wilcoxonSignedRank', () => {
  it('exact distribution without ties matches scipy (method="exact")', () => {
    const base = [0.5, 0.4, 0.3, 0.6, 0.2, 0.45, 0.35, 0.55, 0.25, 0.5];
    const diff = [0.05, 0.11, -0.03, 0.08, 0.21, 0.02, 0.13, -0.07, 0.17, 0.04];
    const r = wilcoxonSignedRank(
      base.map((x, k) => x + diff[k]!),
      base,
    );
    expect(r.method).toBe('exact');
    expect(r.statistic).toBe(48); // W+; scipy reports min(W+, W-) = 7
    expect(r.pValue).toBeCloseTo(0.037109375, 12);
  });

  it('normal approximation with ties and continuity correction matches scipy (method="approx")', () => {
    const r = wilcoxonSignedRank(a, b);
    expect(r.method).toBe('normal');
    expect(r.pValue).toBeCloseTo(0.01653449266792266, 10);
  });

  it('many zero differences are dropped; all zero gives p = 1', () => {
    const r = wilcoxonSignedRank(hitsA, hitsB);
    expect(r.n).toBe(18);
    expect(r.pValue).toBeCloseTo(2.4666475453268303e-5, 12);
    expect(wilcoxonSignedRank([1, 2], [1, 2])).toMatchObject({ n: 0, pValue: 1 });
  });
});
