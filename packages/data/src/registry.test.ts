import { describe, expect, it } from 'vitest';
import { globalRegistry } from './registry.js';

describe('globalRegistry', () => {
  it('two copies of the module (as two installed copies of a package) share one registry per kind', async () => {
    const first = await import('./registry.js');
    // A second instance of the same module, as a second installed copy would be.
    const copy = './registry.js?second-copy';
    const second = (await import(/* @vite-ignore */ copy)) as typeof first;
    expect(second).not.toBe(first);
    const a = first.globalRegistry<number>('test-kind');
    const b = second.globalRegistry<number>('test-kind');
    expect(b).toBe(a);
    a.set('x', 1);
    expect(b.get('x')).toBe(1);
    expect(globalRegistry('another-kind')).not.toBe(a);
    // Kept on globalThis under a Symbol.for key, not enumerable.
    const key = Symbol.for('advrec.registry.test-kind');
    expect((globalThis as unknown as Record<symbol, unknown>)[key]).toBe(a);
    expect(Object.keys(globalThis)).not.toContain('advrec.registry.test-kind');
  });
});
