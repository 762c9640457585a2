import chisquareCdf from '@stdlib/stats-base-dists-chisquare-cdf';
import { describe, expect, it } from 'vitest';
import { deriveSeed, Random } from './index.js';

describe('Random (xoshiro128**)', () => {
  it('is deterministic per seed and per stream key', () => {
    const a = new Random(42);
    const b = new Random(42);
    const xs = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(xs);
    expect(Random.stream(1, 2, 3).nextUint32()).toBe(Random.stream(1, 2, 3).nextUint32());
    expect(Random.stream(1, 2, 3).nextUint32()).not.toBe(Random.stream(1, 3, 2).nextUint32());
    expect(deriveSeed(7, 0, 1)).not.toBe(deriveSeed(7, 1, 0));
    expect(deriveSeed(7, 2 ** 40)).not.toBe(deriveSeed(7, 0));
  });

  it('draws exactly uniform integers below n (chi-square over 1,000 bins)', () => {
    const random = new Random(3);
    const n = 1000;
    const counts = new Float64Array(n);
    const draws = 500_000;
    for (let t = 0; t < draws; t++) counts[random.nextInt(n)]!++;
    let chi2 = 0;
    for (const c of counts) chi2 += (c - draws / n) ** 2 / (draws / n);
    expect(1 - chisquareCdf(chi2, n - 1)).toBeGreaterThan(0.001);
  });

  it('handles bounds above 2^21 and rejects invalid ones', () => {
    const random = new Random(9);
    for (let t = 0; t < 1000; t++) {
      const x = random.nextInt(3_000_000_007);
      expect(Number.isInteger(x) && x >= 0 && x < 3_000_000_007).toBe(true);
    }
    expect(() => random.nextInt(0)).toThrow(RangeError);
    expect(() => random.nextInt(2.5)).toThrow(RangeError);
    expect(() => new Random(1.5)).toThrow(RangeError);
  });

  it('nextFloat is in [0, 1) with mean 1/2; nextGaussian has mean 0 and variance 1', () => {
    const random = new Random(11);
    let sum = 0;
    let g = 0;
    let g2 = 0;
    const n = 200_000;
    for (let t = 0; t < n; t++) {
      const x = random.nextFloat();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
      const z = random.nextGaussian();
      g += z;
      g2 += z * z;
    }
    expect(sum / n).toBeCloseTo(0.5, 2);
    expect(g / n).toBeCloseTo(0, 2);
    expect(g2 / n).toBeCloseTo(1, 1);
  });

  it('shuffle is a seeded permutation', () => {
    const a = new Random(5).shuffle(Int32Array.from({ length: 100 }, (_, k) => k));
    const b = new Random(5).shuffle(Int32Array.from({ length: 100 }, (_, k) => k));
    expect(a).toEqual(b);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, k) => k));
    expect(Array.from(a)).not.toEqual(Array.from({ length: 100 }, (_, k) => k));
  });

  it('getState/setState continue the stream exactly', () => {
    const a = new Random(8);
    a.nextUint32();
    const copy = new Random(0);
    copy.setState(a.getState());
    expect(copy.nextUint32()).toBe(a.nextUint32());
  });
});
