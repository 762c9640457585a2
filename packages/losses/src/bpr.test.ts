import { describe, expect, it } from 'vitest';
import { bprBatch, bprLoss, bprLossGradient, sigmoid, softplus } from './index.js';

describe('BPR loss', () => {
  it('matches -ln sigma(x) on moderate margins', () => {
    for (const x of [-5, -1, -0.1, 0, 0.3, 2, 7]) {
      expect(bprLoss(x)).toBeCloseTo(-Math.log(1 / (1 + Math.exp(-x))), 12);
      expect(bprLossGradient(x)).toBeCloseTo(-1 / (1 + Math.exp(x)), 12);
    }
    expect(bprLoss(0)).toBeCloseTo(Math.LN2, 15);
  });

  it('stays finite and exact for huge margins', () => {
    expect(bprLoss(1000)).toBe(0);
    expect(bprLoss(40)).toBeCloseTo(Math.exp(-40), 30);
    expect(bprLoss(-1000)).toBe(1000);
    expect(bprLossGradient(-1000)).toBe(-1);
    expect(bprLossGradient(1000)).toBe(-0);
    expect(softplus(-700)).toBeCloseTo(Math.exp(-700), 300);
    expect(softplus(800)).toBe(800);
    expect(sigmoid(-800)).toBe(0);
    expect(sigmoid(800)).toBe(1);
  });

  it('sums a batch, counts correct pairs and weights the gradient', () => {
    const pos = Float64Array.of(2, 0, -1);
    const neg = Float64Array.of(1, 0, 1);
    const dp = new Float64Array(3);
    const dn = new Float64Array(3);
    const r = bprBatch(pos, neg, 3, dp, dn, 2);
    const expected = 2 * (softplus(-1) + Math.LN2 + softplus(2));
    expect(r.loss).toBeCloseTo(expected, 12);
    expect(r.correct).toBe(1);
    expect(dp[0]).toBeCloseTo(-2 * sigmoid(-1), 12);
    expect(dn[2]).toBeCloseTo(2 * sigmoid(2), 12);
    // Finite differences of the weighted loss w.r.t. the positive score.
    const h = 1e-6;
    const f = (y: number) => 2 * bprLoss(y - 1);
    expect((f(2 + h) - f(2 - h)) / (2 * h)).toBeCloseTo(dp[0]!, 6);
  });

  it('refuses NaN scores', () => {
    expect(() =>
      bprBatch(
        Float64Array.of(NaN),
        Float64Array.of(0),
        1,
        new Float64Array(1),
        new Float64Array(1),
      ),
    ).toThrow(/NaN/);
  });
});
