import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DataError,
  dedupe,
  filterByCount,
  IdMap,
  kCore,
  readMovieLens100K,
  toImplicit,
  type InteractionLog,
} from './index.js';
import { movielens100k } from './test-support/paths.js';

function log(rows: [string, string, number, number][]): InteractionLog {
  const users = IdMap.fromSourceIds(rows.map((r) => r[0]));
  const items = IdMap.fromSourceIds(rows.map((r) => r[1]));
  return {
    source: 'hand',
    userIdMap: users,
    itemIdMap: items,
    users: Int32Array.from(rows, (r) => users.get(r[0])!),
    items: Int32Array.from(rows, (r) => items.get(r[1])!),
    ratings: Float32Array.from(rows, (r) => r[2]),
    timestamps: Float64Array.from(rows, (r) => r[3]),
    length: rows.length,
  };
}

describe('toImplicit', () => {
  it('keeps ratings >= threshold and compacts ids', () => {
    const out = toImplicit(
      log([
        ['1', 'a', 5, 1],
        ['1', 'b', 2, 2],
        ['2', 'b', 3, 3],
      ]),
      { threshold: 4 },
    );
    expect(out.length).toBe(1);
    expect(out.userIdMap.toArray()).toEqual(['1']);
    expect(out.itemIdMap.toArray()).toEqual(['a']);
  });

  it('on ML-100K, rating >= 4 keeps 55,375 interactions', async () => {
    const ml = await readMovieLens100K(movielens100k);
    expect(toImplicit(ml, { threshold: 4 }).length).toBe(55_375);
    expect(toImplicit(ml)).toBe(ml);
  });

  it('needs ratings and a numeric threshold', () => {
    const noRatings = { ...log([['1', 'a', 5, 1]]), ratings: null };
    expect(() => toImplicit(noRatings, { threshold: 4 })).toThrow(DataError);
    expect(() => toImplicit(noRatings, { threshold: Number.NaN })).toThrow(ConfigError);
  });
});

describe('dedupe', () => {
  it('merges duplicates keeping the earliest timestamp and its rating', () => {
    const out = dedupe(
      log([
        ['1', 'a', 1, 50],
        ['1', 'a', 5, 10],
        ['1', 'b', 3, 30],
        ['1', 'a', 2, 20],
      ]),
    );
    expect(out.length).toBe(2);
    const a = out.items.indexOf(out.itemIdMap.toDense('a'));
    expect(out.timestamps![a]).toBe(10);
    expect(out.ratings![a]).toBe(5);
  });
});

describe('filterByCount and kCore', () => {
  it('iterates until every user and item has at least k interactions (hand case)', () => {
    // u3 has 1 item; dropping it leaves item c with 1 user, which drops, leaving u2 with 1 item...
    const rows: [string, string, number, number][] = [
      ['u1', 'a', 1, 1],
      ['u1', 'b', 1, 2],
      ['u2', 'a', 1, 3],
      ['u2', 'b', 1, 4],
      ['u2', 'c', 1, 5],
      ['u3', 'c', 1, 6],
      ['u4', 'd', 1, 7],
      ['u4', 'c', 1, 8],
    ];
    const core = kCore(log(rows), 2);
    expect(core.userIdMap.toArray()).toEqual(['u1', 'u2']);
    expect(core.itemIdMap.toArray()).toEqual(['a', 'b']);
    expect(core.length).toBe(4);
    const once = filterByCount(log(rows), { minUserInteractions: 2, minItemInteractions: 2 });
    expect(once.userIdMap.toArray()).toEqual(['u1', 'u2', 'u4']); // one pass keeps u4's c
  });

  it('gives a true 10-core of ML-100K', async () => {
    const core = kCore(await readMovieLens100K(movielens100k), 10);
    const userCount = new Int32Array(core.userIdMap.size);
    const itemCount = new Int32Array(core.itemIdMap.size);
    for (let k = 0; k < core.length; k++) {
      userCount[core.users[k]!]!++;
      itemCount[core.items[k]!]!++;
    }
    expect(Math.min(...userCount)).toBeGreaterThanOrEqual(10);
    expect(Math.min(...itemCount)).toBeGreaterThanOrEqual(10);
    expect(core.userIdMap.size).toBe(943); // every ML-100K user has >= 20 ratings
    expect(core.itemIdMap.size).toBeLessThan(1682);
  });

  it('rejects bad minimums', () => {
    expect(() =>
      filterByCount(log([['1', 'a', 1, 1]]), { minUserInteractions: 0, minItemInteractions: 1.5 }),
    ).toThrow(
      expect.objectContaining({
        issues: [
          expect.objectContaining({ path: 'minUserInteractions' }),
          expect.objectContaining({ path: 'minItemInteractions' }),
        ],
      }),
    );
  });
});
