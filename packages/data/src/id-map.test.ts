import { describe, expect, it } from 'vitest';
import { DataError, IdMap } from './index.js';

describe('IdMap', () => {
  it('orders integer ids numerically and other ids by code point', () => {
    const numeric = IdMap.fromSourceIds(['10', '9', '100', '9']);
    expect(numeric.toArray()).toEqual(['9', '10', '100']);
    expect(numeric.numeric).toBe(true);
    expect(numeric.toDense('10')).toBe(1);
    expect(numeric.toDense(100)).toBe(2);
    const text = IdMap.fromSourceIds(['b', 'a10', 'a9']);
    expect(text.toArray()).toEqual(['a10', 'a9', 'b']);
    expect(text.numeric).toBe(false);
  });

  it('names the unknown id', () => {
    const map = IdMap.fromSourceIds(['1']);
    expect(() => map.toDense('7', 'user')).toThrow(new DataError('unknown user "7"'));
    expect(() => map.toSource(3)).toThrow(DataError);
    expect(map.get('7')).toBeUndefined();
  });

  it('filters with a remap', () => {
    const { map, remap } = IdMap.fromSourceIds(['1', '2', '3']).filter([1, 0, 1]);
    expect(map.toArray()).toEqual(['1', '3']);
    expect(Array.from(remap)).toEqual([0, -1, 1]);
  });
});
