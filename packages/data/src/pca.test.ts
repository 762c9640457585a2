import { describe, expect, it } from 'vitest';
import { ConfigError, DataError } from './errors.js';
import { principalComponents } from './pca.js';
import { Random } from './random.js';

/** Rows with known principal directions: axis j scaled by `scales[j]`, then a fixed rotation. */
function planted(rows: number, scales: readonly number[], seed = 3) {
  const d = scales.length;
  const random = new Random(seed);
  // A random orthonormal basis (Gram-Schmidt of Gaussian vectors).
  const basis: number[][] = [];
  for (let j = 0; j < d; j++) {
    let v = Array.from({ length: d }, () => random.nextGaussian());
    for (const b of basis) {
      const s = v.reduce((a, x, c) => a + x * b[c]!, 0);
      v = v.map((x, c) => x - s * b[c]!);
    }
    const n = Math.hypot(...v);
    basis.push(v.map((x) => x / n));
  }
  const data = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < d; j++) {
      const z = random.nextGaussian() * scales[j]!;
      for (let c = 0; c < d; c++) data[r * d + c]! += z * basis[j]![c]!;
    }
  // A mean far from zero, as CNN features have.
  for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) data[r * d + c]! += 5;
  return { data, dimension: d, basis };
}

describe('principalComponents', () => {
  it('finds planted directions and variances, and projects onto them', () => {
    const scales = [6, 4, 3, 1, 0.5, 0.3, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05];
    const { data, dimension, basis } = planted(4000, scales);
    const pca = principalComponents({ data, dimension }, { components: 3, seed: 1 });
    expect(pca.dimension).toBe(3);
    for (let j = 0; j < 3; j++) {
      const w = pca.components.subarray(j * dimension, (j + 1) * dimension);
      const cos = Math.abs(w.reduce((a, x, c) => a + x * basis[j]![c]!, 0));
      expect(cos).toBeGreaterThan(0.99);
      expect(pca.variances[j]! / scales[j]! ** 2).toBeCloseTo(1, 0.5);
    }
    const total = scales.reduce((a, s) => a + s * s, 0);
    expect(pca.explainedVarianceRatio).toBeCloseTo((36 + 16 + 9) / total, 1);
    const projected = pca.project({ data, dimension });
    expect(projected.length).toBe(4000 * 3);
    // Projections are centred, with the components' variances.
    for (let j = 0; j < 3; j++) {
      let s = 0;
      let s2 = 0;
      for (let r = 0; r < 4000; r++) {
        s += projected[r * 3 + j]!;
        s2 += projected[r * 3 + j]! ** 2;
      }
      expect(Math.abs(s / 4000)).toBeLessThan(0.3);
      expect(s2 / 3999 / pca.variances[j]!).toBeCloseTo(1, 1);
    }
  });

  it('ignores and keeps zero rows (items without features), is seeded, and samples large inputs', () => {
    const { data, dimension } = planted(600, [3, 2, 1, 0.5, 0.1]);
    const withMissing = new Float32Array(data.length + 2 * dimension);
    withMissing.set(data.subarray(0, 300 * dimension));
    withMissing.set(data.subarray(300 * dimension), 301 * dimension);
    const a = principalComponents({ data: withMissing, dimension }, { components: 2, seed: 4 });
    const b = principalComponents({ data, dimension }, { components: 2, seed: 4 });
    expect(Array.from(a.variances)).toEqual(Array.from(b.variances));
    const projected = a.project({ data: withMissing, dimension });
    expect(Array.from(projected.subarray(300 * 2, 301 * 2))).toEqual([0, 0]);
    expect(Array.from(projected.subarray(601 * 2))).toEqual([0, 0]);
    const sampled = principalComponents(
      { data, dimension },
      { components: 2, seed: 4, maxRows: 200 },
    );
    const again = principalComponents(
      { data, dimension },
      { components: 2, seed: 4, maxRows: 200 },
    );
    expect(Array.from(sampled.components)).toEqual(Array.from(again.components));
    expect(sampled.variances[0]! / b.variances[0]!).toBeCloseTo(1, 0.3);
  });

  it('refuses bad options and inputs with the field or the cause named', () => {
    const { data, dimension } = planted(50, [2, 1, 0.5]);
    expect(() => principalComponents({ data, dimension }, { components: 4 })).toThrow(ConfigError);
    expect(() => principalComponents({ data, dimension }, { components: 4 })).toThrow(
      /components.*from 1 to the feature dimension 3, got 4/,
    );
    expect(() =>
      principalComponents({ data, dimension }, { components: 1, iterations: 0 }),
    ).toThrow(/iterations/);
    expect(() =>
      principalComponents({ data: new Float32Array(9), dimension: 3 }, { components: 1 }),
    ).toThrow(DataError);
    const pca = principalComponents({ data, dimension }, { components: 2 });
    expect(() => pca.project({ data: new Float32Array(8), dimension: 4 })).toThrow(
      /fitted on 3-d features, these are 4-d/,
    );
  });
});
