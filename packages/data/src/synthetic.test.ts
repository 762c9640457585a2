import { describe, expect, it } from 'vitest';
import { generateSynthetic, leaveOneOut, Random } from './index.js';

describe('generateSynthetic', () => {
  const data = generateSynthetic({
    users: 400,
    items: 300,
    rank: 4,
    seed: 9,
    featureDimension: 12,
  });

  it('is reproducible per seed', () => {
    const again = generateSynthetic({
      users: 400,
      items: 300,
      rank: 4,
      seed: 9,
      featureDimension: 12,
    });
    expect(again.log.items).toEqual(data.log.items);
    expect(again.itemFeatures).toEqual(data.itemFeatures);
    expect(generateSynthetic({ users: 400, items: 300, rank: 4, seed: 10 }).log.items).not.toEqual(
      data.log.items,
    );
  });

  it('plants the preferences: held-out items outscore random items under the true factors (AUC > 0.8)', () => {
    const dataset = leaveOneOut(data.log, { seed: 1 });
    const score = (u: number, i: number) => {
      const uu = Number(dataset.userIdMap.toSource(u).slice(1));
      const ii = Number(dataset.itemIdMap.toSource(i).slice(1));
      let s = data.itemBias[ii]! / 3;
      for (let f = 0; f < data.rank; f++)
        s += data.userFactors[uu * data.rank + f]! * data.itemFactors[ii * data.rank + f]! * 2;
      return s;
    };
    const random = new Random(1);
    let wins = 0;
    let trials = 0;
    for (let u = 0; u < dataset.numUsers; u++) {
      const i = dataset.test.row(u)[0]!;
      for (let k = 0; k < 20; k++) {
        const j = random.nextInt(dataset.numItems);
        if (dataset.train.has(u, j) || j === i) continue;
        wins += score(u, i) > score(u, j) ? 1 : 0;
        trials++;
      }
    }
    expect(wins / trials).toBeGreaterThan(0.8);
  });

  it('has at least minPerUser interactions per user, timestamps and features of the asked shape', () => {
    const counts = new Int32Array(400);
    for (const u of data.log.users) counts[u]!++;
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(5);
    expect(data.log.timestamps).not.toBeNull();
    expect(data.itemFeatures!.length).toBe(300 * 12);
  });

  it('reports bad options together', () => {
    expect(() => generateSynthetic({ users: 0, items: 1, rank: 0 })).toThrow(
      /3 invalid options|invalid options/,
    );
  });
});
