import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  describe as describeDataset,
  formatDescription,
  generateSynthetic,
  givenSplit,
  holdOutValidation,
  IdMap,
  leaveOneOut,
  ratioSplit,
  readMovieLens100K,
  type InteractionLog,
} from './index.js';
import { movielens100k } from './test-support/paths.js';

function smallLog(rows: [string, string, number][]): InteractionLog {
  const users = IdMap.fromSourceIds(rows.map((r) => r[0]));
  const items = IdMap.fromSourceIds(rows.map((r) => r[1]));
  return {
    source: 'small',
    userIdMap: users,
    itemIdMap: items,
    users: Int32Array.from(rows, (r) => users.get(r[0])!),
    items: Int32Array.from(rows, (r) => items.get(r[1])!),
    ratings: null,
    timestamps: Float64Array.from(rows, (r) => r[2]),
    length: rows.length,
  };
}

describe('leaveOneOut on MovieLens-100K', async () => {
  const log = await readMovieLens100K(movielens100k);
  const dataset = leaveOneOut(log, { seed: 7 });
  const testItemOf = (sourceUser: string): string[] =>
    Array.from(dataset.test.row(dataset.userIdMap.toDense(sourceUser)), (i) =>
      dataset.itemIdMap.toSource(i),
    );

  it("holds out each user's latest interaction (checked by hand against u.data)", () => {
    // awk over u.data: user 2's latest rating (888980240) is item 281, user 196's (881252305)
    // item 110, user 943's (888693184) item 234, user 405's (885549943) item 1591.
    expect(testItemOf('2')).toEqual(['281']);
    expect(testItemOf('196')).toEqual(['110']);
    expect(testItemOf('943')).toEqual(['234']);
    expect(testItemOf('405')).toEqual(['1591']);
    // User 1 rated items 74 and 102 at the same latest second: one of them, chosen by the seed.
    expect(['74', '102']).toContain(testItemOf('1')[0]);
  });

  it('holds out exactly one interaction per user, always one with the maximal timestamp', () => {
    expect(dataset.test.nnz).toBe(943);
    expect(dataset.train.nnz).toBe(100_000 - 943);
    const latest = new Float64Array(log.userIdMap.size).fill(-Infinity);
    for (let k = 0; k < log.length; k++)
      latest[log.users[k]!] = Math.max(latest[log.users[k]!]!, log.timestamps![k]!);
    for (let u = 0; u < dataset.numUsers; u++) {
      expect(dataset.test.degree(u)).toBe(1);
      expect(dataset.test.timestamps![dataset.test.indptr[u]!]).toBe(latest[u]);
      expect(dataset.train.has(u, dataset.test.row(u)[0]!)).toBe(false);
    }
    for (let p = 0; p < dataset.train.nnz; p++) {
      expect(dataset.train.timestamps![p]!).toBeLessThanOrEqual(
        latest[dataset.train.entryUsers()[p]!]!,
      );
    }
  });

  it('is reproducible and breaks ties by the seed', () => {
    const again = leaveOneOut(log, { seed: 7 });
    expect(again.test.indices).toEqual(dataset.test.indices);
    const tieChoices = new Set<number>();
    for (let seed = 0; seed < 20; seed++)
      tieChoices.add(leaveOneOut(log, { seed }).test.row(0)[0]!);
    expect(tieChoices.size).toBe(2); // user 1's two latest items both get picked across seeds
  });

  it('takes a validation hold-out of the latest remaining interaction per user', () => {
    const withValidation = holdOutValidation(dataset);
    expect(withValidation.validation!.nnz).toBe(943);
    expect(withValidation.train.nnz).toBe(100_000 - 2 * 943);
    for (let u = 0; u < withValidation.numUsers; u++) {
      const v = withValidation.validation!.timestamps![withValidation.validation!.indptr[u]!]!;
      for (const t of withValidation.train.timestamps!.subarray(
        withValidation.train.indptr[u]!,
        withValidation.train.indptr[u + 1]!,
      )) {
        expect(t).toBeLessThanOrEqual(v);
      }
      expect(v).toBeLessThanOrEqual(
        withValidation.test.timestamps![withValidation.test.indptr[u]!]!,
      );
    }
    expect(describeDataset(withValidation).protocol.validation).toEqual({
      order: 'latest',
      seed: 7,
    });
    expect(formatDescription(describeDataset(withValidation))).toContain('validation');
  });

  it('holds out from a seeded sample of users only, when asked: the others keep every pair', () => {
    const sampled = holdOutValidation(dataset, { users: 100, seed: 3 });
    const held = Array.from({ length: sampled.numUsers }, (_, u) => sampled.validation!.degree(u));
    expect(held.filter((n) => n === 1)).toHaveLength(100);
    expect(held.filter((n) => n === 0)).toHaveLength(843);
    for (let u = 0; u < sampled.numUsers; u++)
      expect(sampled.train.degree(u) + held[u]!).toBe(dataset.train.degree(u));
    expect(sampled.protocol.validation).toEqual({ order: 'latest', seed: 3, users: 100 });
    // Seeded: the same sample again, another with another seed; every user at or above all.
    expect(holdOutValidation(dataset, { users: 100, seed: 3 }).validation!.indices).toEqual(
      sampled.validation!.indices,
    );
    expect(holdOutValidation(dataset, { users: 100, seed: 4 }).validation!.indices).not.toEqual(
      sampled.validation!.indices,
    );
    expect(holdOutValidation(dataset, { users: 5000 }).validation!.nnz).toBe(943);
    expect(() => holdOutValidation(dataset, { users: 0 })).toThrow(/users/);
  });

  it('random order differs from latest and is seeded', () => {
    const a = leaveOneOut(log, { seed: 1, order: 'random' });
    const b = leaveOneOut(log, { seed: 1, order: 'random' });
    expect(a.test.indices).toEqual(b.test.indices);
    expect(a.test.indices).not.toEqual(dataset.test.indices);
  });
});

describe('ratioSplit', () => {
  it('holds out round(fraction x n) per user, temporal order takes the latest', () => {
    const log = smallLog([
      ['a', 'x', 1],
      ['a', 'y', 5],
      ['a', 'z', 3],
      ['a', 'w', 4],
      ['a', 'v', 2],
      ['b', 'x', 1],
      ['b', 'y', 2],
      ['c', 'x', 9],
    ]);
    const d = ratioSplit(log, { testFraction: 0.4, order: 'temporal', seed: 3 });
    const items = (u: string) =>
      Array.from(d.test.row(d.userIdMap.toDense(u)), (i) => d.itemIdMap.toSource(i)).sort();
    expect(items('a')).toEqual(['w', 'y']); // timestamps 5 and 4
    expect(items('b')).toEqual(['y']); // at least one held out, one left in train
    expect(items('c')).toEqual([]); // a single interaction stays in train
    expect(d.train.nnz + d.test.nnz).toBe(8);
  });

  it('random order on a synthetic log: about 20% held out, reproducible', () => {
    const { log } = generateSynthetic({ users: 300, items: 200, seed: 5 });
    const a = ratioSplit(log, { seed: 11 });
    const b = ratioSplit(log, { seed: 11 });
    expect(a.test.indices).toEqual(b.test.indices);
    expect(a.test.nnz / (a.train.nnz + a.test.nnz)).toBeGreaterThan(0.18);
    expect(a.test.nnz / (a.train.nnz + a.test.nnz)).toBeLessThan(0.22);
  });

  it('rejects bad options, all of them at once', () => {
    const { log } = generateSynthetic({ users: 10, items: 20, seed: 1, meanPerUser: 6 });
    let error: unknown;
    try {
      ratioSplit(log, { testFraction: 1.5, order: 'sideways' as never, seed: -1 });
    } catch (e) {
      error = e;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual([
      'seed',
      'testFraction',
      'order',
    ]);
  });
});

describe('cold-start items', () => {
  it('are reported when kept and removed when dropped', () => {
    const log = smallLog([
      ['a', 'x', 2], // a's latest, x stays in train through b
      ['a', 'y', 1],
      ['b', 'x', 1],
      ['b', 'z', 2], // z is b's latest and only occurs there: cold once held out
    ]);
    const kept = leaveOneOut(log);
    expect(Array.from(kept.coldStartItems, (i) => kept.itemIdMap.toSource(i))).toEqual(['z']);
    expect(describeDataset(kept).coldStartTestInteractions).toBe(1);
    const dropped = leaveOneOut(log, { coldStartItems: 'drop' });
    expect(dropped.test.nnz).toBe(1);
    expect(dropped.protocol.droppedColdStartInteractions).toBe(1);
    expect(dropped.coldStartItems.length).toBe(0);
  });
});

describe('givenSplit', () => {
  it('unions the id maps, merges duplicates and removes train/test overlap from test', () => {
    const train = smallLog([
      ['1', '10', 1],
      ['1', '10', 0],
      ['2', '11', 1],
    ]);
    const test = smallLog([
      ['1', '11', 5],
      ['1', '10', 6],
      ['3', '12', 7],
    ]);
    const d = givenSplit(train, test, { extraItems: ['99'] });
    expect(d.userIdMap.toArray()).toEqual(['1', '2', '3']);
    expect(d.itemIdMap.toArray()).toEqual(['10', '11', '12', '99']);
    expect(d.protocol.mergedDuplicates).toBe(1);
    expect(d.protocol.droppedTrainTestOverlap).toBe(1);
    expect(d.test.nnz).toBe(2);
    expect(d.train.timestamps![0]).toBe(0); // the earliest of the duplicates is kept
    expect(Array.from(d.coldStartItems, (i) => d.itemIdMap.toSource(i))).toEqual(['12']);
  });

  it('keeps a given validation file as the validation split (train overlap removed, ids unioned)', () => {
    const train = smallLog([
      ['1', '10', 1],
      ['2', '11', 1],
    ]);
    const validation = smallLog([
      ['1', '13', 2],
      ['2', '11', 2], // also in train: dropped from validation
      ['4', '10', 2], // a user only in validation
    ]);
    const test = smallLog([['1', '11', 5]]);
    const d = givenSplit(train, test, { validation });
    expect(d.userIdMap.toArray()).toEqual(['1', '2', '4']);
    expect(d.itemIdMap.toArray()).toEqual(['10', '11', '13']);
    expect(d.validation!.nnz).toBe(2);
    expect(d.validation!.has(d.userIdMap.get('1')!, d.itemIdMap.get('13')!)).toBe(true);
    expect(d.protocol.validation).toEqual({ order: 'given', seed: 0 });
    expect(d.protocol.droppedTrainValidationOverlap).toBe(1);
    expect(d.protocol.droppedTrainTestOverlap).toBe(0);
    // Item 13 occurs in validation only: it is cold.
    expect(Array.from(d.coldStartItems, (i) => d.itemIdMap.toSource(i))).toEqual(['13']);
    // A carved validation on top of a given one is refused.
    expect(() => holdOutValidation(d)).toThrow(/already has a validation split/);
  });
});
