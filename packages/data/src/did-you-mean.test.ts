import { describe, expect, it } from 'vitest';
import { closestName, didYouMean } from './errors.js';

describe('closestName', () => {
  it('matches names up to case and separators first', () => {
    expect(closestName('itempop', ['mf', 'item-pop', 'vbpr'])).toBe('item-pop');
    expect(closestName('ML100K', ['ml-1m', 'ml-100k'])).toBe('ml-100k');
  });

  it('takes the closest by edit distance (swaps count once) within a third of the length', () => {
    expect(closestName('optimiser', ['optimizer', 'seed', 'l2'])).toBe('optimizer');
    expect(closestName('mff', ['mf', 'vbpr'])).toBe('mf');
    expect(closestName('fmg', ['fgm', 'fgsm', 'random'])).toBe('fgm');
    expect(closestName('gowlala', ['gowalla', 'yelp2018'])).toBe('gowalla');
  });

  it('suggests nothing for a name that is not close to any', () => {
    expect(closestName('nope', ['mf', 'item-pop', 'vbpr'])).toBeNull();
    expect(closestName('pgd', ['fgm', 'fgsm', 'random', 'none'])).toBeNull();
    expect(closestName('x', [])).toBeNull();
    expect(didYouMean('nope', ['mf'])).toBe('');
    expect(didYouMean('mff', ['mf'])).toBe(' (did you mean "mf"?)');
  });
});
