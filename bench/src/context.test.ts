import { describe, expect, it } from 'vitest';
import { median, sharedDataDir } from './context.js';

describe('bench helpers', () => {
  it('median of odd and even lists, unsorted input', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('finds ../shared/data', () => {
    expect(sharedDataDir()).toMatch(/shared[\\/]data$/);
  });
});
