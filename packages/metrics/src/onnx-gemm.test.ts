import { describe, expect, it } from 'vitest';
import { Random } from '@advrec/data';
import { OnnxGemm } from './index.js';

function reference(
  a: Float32Array,
  m: number,
  k: number,
  b: Float32Array,
  n: number,
  transA: boolean,
  transB: boolean,
) {
  // op(A) is m x k, op(B) is k x n.
  const out = new Float64Array(m * n);
  for (let r = 0; r < m; r++)
    for (let c = 0; c < n; c++) {
      let s = 0;
      for (let x = 0; x < k; x++)
        s += (transA ? a[x * m + r]! : a[r * k + x]!) * (transB ? b[c * k + x]! : b[x * n + c]!);
      out[r * n + c] = s;
    }
  return out;
}

describe('OnnxGemm', () => {
  it('multiplies with every transposition like a float64 reference', async () => {
    const gemm = await OnnxGemm.create({ threads: 1 });
    expect(gemm).not.toBeNull();
    const random = new Random(1);
    const [m, k, n] = [37, 130, 9];
    for (const transA of [false, true])
      for (const transB of [false, true]) {
        const a = Float32Array.from({ length: m * k }, () => random.nextGaussian());
        const b = Float32Array.from({ length: k * n }, () => random.nextGaussian());
        const y = await gemm!.multiply(
          a,
          transA ? k : m,
          transA ? m : k,
          b,
          transB ? n : k,
          transB ? k : n,
          transA,
          transB,
        );
        const expected = reference(a, m, k, b, n, transA, transB);
        expect(y.length).toBe(m * n);
        for (let i = 0; i < y.length; i++)
          expect(Math.abs(y[i]! - expected[i]!)).toBeLessThan(1e-4);
      }
    await expect(
      gemm!.multiply(new Float32Array(6), 2, 3, new Float32Array(6), 2, 3),
    ).rejects.toThrow(/cannot multiply/);
    await gemm!.release();
  });
});
