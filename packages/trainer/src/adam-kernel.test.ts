import { describe, expect, it } from 'vitest';
import { Random } from '@advrec/data';
import { WasmAdamArrays } from './adam-kernel.js';
import { adamStep } from './optimizer.js';

describe('WasmAdamArrays (the SIMD dense Adam kernel)', () => {
  it('gives the plain loop bit for bit, over any range (odd lengths, zero gradients, many steps)', () => {
    const n = 1001;
    const random = new Random(3);
    const arena = WasmAdamArrays.create([n, n, n, n])!;
    const [values, gradient, m, v] = arena.arrays as [
      Float32Array,
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    const reference = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
    for (let k = 0; k < n; k++) values[k] = reference[0]![k] = random.nextGaussian();
    for (let step = 1; step <= 20; step++) {
      for (let k = 0; k < n; k++)
        gradient[k] = k % 7 === 0 ? 0 : Math.fround(random.nextGaussian() * 1e-2);
      const rate = (0.001 * Math.sqrt(1 - 0.98 ** step)) / (1 - 0.9 ** step);
      // The kernel in three uneven ranges, the reference in one pass.
      arena.step(values, gradient, m, v, 0, 1, 0.9, 0.98, rate, 1e-8);
      arena.step(values, gradient, m, v, 1, 500, 0.9, 0.98, rate, 1e-8);
      arena.step(values, gradient, m, v, 500, n, 0.9, 0.98, rate, 1e-8);
      adamStep(reference[0]!, gradient, reference[1]!, reference[2]!, 0.9, 0.98, rate, 1e-8);
    }
    expect(Array.from(values)).toEqual(Array.from(reference[0]!));
    expect(Array.from(m)).toEqual(Array.from(reference[1]!));
    expect(Array.from(v)).toEqual(Array.from(reference[2]!));
  });

  it('refuses arrays outside its memory, and sizes beyond 4 GiB', () => {
    const arena = WasmAdamArrays.create([4, 4, 4, 4])!;
    const [values, gradient, m] = arena.arrays as [Float32Array, Float32Array, Float32Array];
    expect(() =>
      arena.step(values, gradient, m, new Float32Array(4), 0, 4, 0.9, 0.98, 0.001, 1e-8),
    ).toThrow(/outside its memory/);
    expect(WasmAdamArrays.create([2 ** 29, 2 ** 29])).toBeNull();
  });
});
