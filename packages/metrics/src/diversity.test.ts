import { describe, expect, it } from 'vitest';
import { Random } from '@advrec/data';
import { meanPairwiseCosine, meanRowNorm } from './diversity.js';

describe('meanPairwiseCosine', () => {
  it('equals the mean over all pairs of distinct rows, computed pair by pair', () => {
    const random = new Random(5);
    const rows = 40;
    const d = 7;
    const values = Float32Array.from({ length: rows * d }, () => random.nextGaussian() + 0.3);
    values.fill(0, 3 * d, 4 * d); // a zero row is skipped
    let sum = 0;
    let pairs = 0;
    const norm = (r: number) => Math.hypot(...values.subarray(r * d, (r + 1) * d));
    for (let a = 0; a < rows; a++)
      for (let b = 0; b < rows; b++) {
        if (a === b || a === 3 || b === 3) continue;
        let dot = 0;
        for (let c = 0; c < d; c++) dot += values[a * d + c]! * values[b * d + c]!;
        sum += dot / (norm(a) * norm(b));
        pairs++;
      }
    const result = meanPairwiseCosine(values, rows, d);
    expect(result.rowsUsed).toBe(rows - 1);
    expect(result.meanCosine).toBeCloseTo(sum / pairs, 6);
  });

  it('is 1 for collapsed rows and 0 for orthogonal ones', () => {
    expect(meanPairwiseCosine(Float32Array.of(1, 2, 2, 4, 3, 6), 3, 2).meanCosine).toBeCloseTo(
      1,
      9,
    );
    expect(meanPairwiseCosine(Float32Array.of(1, 0, 0, 0, 2, 0, 0, 0, 3), 3, 3).meanCosine).toBe(0);
    expect(() => meanPairwiseCosine(new Float32Array(5), 2, 3)).toThrow(RangeError);
  });
});

describe('meanRowNorm', () => {
  it("is the mean of the rows' L2 norms", () => {
    expect(meanRowNorm(Float32Array.of(3, 4, 0, 0, 1, 0), 3, 2)).toBeCloseTo(2, 9);
    expect(() => meanRowNorm(new Float32Array(3), 2, 2)).toThrow(RangeError);
  });
});
