import chisquareCdf from '@stdlib/stats-base-dists-chisquare-cdf';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DataError,
  givenSplit,
  InteractionMatrix,
  NegativeSampler,
  Random,
  readMovieLens100K,
  readUserItemLists,
  TripleSampler,
  leaveOneOut,
  type Dataset,
} from './index.js';
import {
  gowallaTest,
  gowallaTrain,
  ml1mTest,
  ml1mTrain,
  movielens100k,
} from './test-support/paths.js';

const gowalla: Dataset = givenSplit(
  await readUserItemLists(gowallaTrain),
  await readUserItemLists(gowallaTest),
);

/**
 * Chi-square test of the sampled negatives against the exact law of the sampler: a draw
 * for user u is uniform over the C candidates minus u's d_u positives. Expected count of
 * item j: sum over draws of [j not a positive of u] / (C - d_u).
 */
function uniformityPValue(
  train: InteractionMatrix,
  users: Int32Array,
  negatives: Int32Array,
  count: number,
): number {
  const numItems = train.numItems;
  const drawsPerUser = new Float64Array(train.numUsers);
  for (let t = 0; t < count; t++) drawsPerUser[users[t]!]!++;
  let total = 0;
  const expected = new Float64Array(numItems);
  for (let u = 0; u < train.numUsers; u++) {
    if (drawsPerUser[u] === 0) continue;
    const mass = drawsPerUser[u]! / (numItems - train.degree(u));
    total += mass;
    for (const j of train.row(u)) expected[j]! -= mass;
  }
  const observed = new Float64Array(numItems);
  for (let t = 0; t < count; t++) observed[negatives[t]!]!++;
  let chi2 = 0;
  for (let j = 0; j < numItems; j++) {
    const e = expected[j]! + total;
    chi2 += (observed[j]! - e) ** 2 / e;
  }
  return 1 - chisquareCdf(chi2, numItems - 1);
}

describe('TripleSampler on Gowalla', () => {
  const sampler = new TripleSampler(gowalla.train, { seed: 2024 });
  const epochs = 2;
  const total = epochs * gowalla.train.nnz;
  const users = new Int32Array(total);
  const positives = new Int32Array(total);
  const negatives = new Int32Array(total);
  let at = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (const batch of sampler.epoch(epoch)) {
      users.set(batch.users, at);
      positives.set(batch.positives, at);
      negatives.set(batch.negatives, at);
      at += batch.size;
    }
  }

  it('draws more than a million triples in two epochs, as many per epoch as training interactions', () => {
    expect(at).toBe(total);
    expect(total).toBeGreaterThan(1_000_000);
    expect(sampler.batchesPerEpoch).toBe(Math.ceil(810_128 / 512));
  });

  it('never samples a training positive as a negative', () => {
    let violations = 0;
    for (let t = 0; t < total; t++) if (gowalla.train.has(users[t]!, negatives[t]!)) violations++;
    expect(violations).toBe(0);
  });

  it('visits every training interaction exactly once per epoch (shuffle order)', () => {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const seen = new Uint8Array(gowalla.train.nnz);
      let missing = 0;
      for (let t = epoch * gowalla.train.nnz; t < (epoch + 1) * gowalla.train.nnz; t++) {
        const u = users[t]!;
        const position = gowalla.train.row(u).indexOf(positives[t]!);
        if (position < 0) missing++;
        else seen[gowalla.train.indptr[u]! + position]!++;
      }
      expect(missing).toBe(0);
      expect(seen.every((s) => s === 1)).toBe(true);
    }
  });

  it("draws negatives uniformly over each user's non-positives (chi-square, p > 0.001)", () => {
    const p = uniformityPValue(gowalla.train, users, negatives, total);
    console.info(`Gowalla negatives, ${total} draws: chi-square p = ${p.toFixed(4)}`);
    expect(p).toBeGreaterThan(0.001);
  });

  it('the uniformity test does reject a sampler biased towards half the catalogue (p < 1e-6)', () => {
    const biased = negatives.slice();
    const random = new Random(1);
    for (let t = 0; t < total; t++) {
      // Redraw 10% of the negatives from the first half of the catalogue only.
      if (random.nextFloat() < 0.1) {
        let j: number;
        do j = random.nextInt(gowalla.numItems >> 1);
        while (gowalla.train.has(users[t]!, j));
        biased[t] = j;
      }
    }
    expect(uniformityPValue(gowalla.train, users, biased, total)).toBeLessThan(1e-6);
  });

  it('gives identical batches whatever the number of consumers and the order they run in', () => {
    for (const consumers of [2, 3, 5]) {
      const own = Array.from(
        { length: consumers },
        () => new TripleSampler(gowalla.train, { seed: 2024 }),
      );
      const collected = new Int32Array(gowalla.train.nnz * 3);
      // Consumer k takes batches k, k + consumers, ... of epoch 1, the last consumer first and backwards.
      for (let k = consumers - 1; k >= 0; k--) {
        const mine: number[] = [];
        for (let b = k; b < sampler.batchesPerEpoch; b += consumers) mine.push(b);
        for (const b of mine.reverse()) {
          const batch = own[k]!.batch(1, b);
          const offset = b * 512 * 3;
          collected.set(batch.users, offset);
          collected.set(batch.positives, offset + batch.size);
          collected.set(batch.negatives, offset + 2 * batch.size);
        }
      }
      const reference = new Int32Array(gowalla.train.nnz * 3);
      for (let b = 0; b < sampler.batchesPerEpoch; b++) {
        const batch = sampler.batch(1, b);
        const offset = b * 512 * 3;
        reference.set(batch.users, offset);
        reference.set(batch.positives, offset + batch.size);
        reference.set(batch.negatives, offset + 2 * batch.size);
      }
      expect(Buffer.from(collected.buffer).equals(Buffer.from(reference.buffer))).toBe(true);
    }
  });

  it('changes with the epoch and the seed', () => {
    const other = new TripleSampler(gowalla.train, { seed: 2025 });
    expect(sampler.batch(0, 3).negatives).not.toEqual(sampler.batch(1, 3).negatives);
    expect(sampler.batch(0, 3).users).not.toEqual(other.batch(0, 3).users);
  });
});

describe('NegativeSampler', () => {
  it('fill() makes the same draws as repeated sample() calls', () => {
    const negativeSampler = new NegativeSampler(gowalla.train);
    const users = Int32Array.from({ length: 2000 }, (_, t) => (t * 7919) % gowalla.numUsers);
    const filled = new Int32Array(users.length);
    negativeSampler.fill(users, filled, users.length, Random.stream(9, 1));
    const random = Random.stream(9, 1);
    expect(filled).toEqual(Int32Array.from(users, (u) => negativeSampler.sample(u, random)));
  });

  it('is uniform for one heavy user of MovieLens-100K (chi-square over its non-positives)', async () => {
    const dataset = leaveOneOut(await readMovieLens100K(movielens100k));
    const negativeSampler = new NegativeSampler(dataset.train);
    const u = dataset.userIdMap.toDense('405'); // 737 ratings
    const draws = 300_000;
    const random = new Random(77);
    const counts = new Float64Array(dataset.numItems);
    for (let t = 0; t < draws; t++) counts[negativeSampler.sample(u, random)]!++;
    const allowed = negativeSampler.candidates.filter((i) => !dataset.train.has(u, i));
    for (const i of dataset.train.row(u)) expect(counts[i]).toBe(0);
    const expected = draws / allowed.length;
    let chi2 = 0;
    for (const i of allowed) chi2 += (counts[i]! - expected) ** 2 / expected;
    expect(1 - chisquareCdf(chi2, allowed.length - 1)).toBeGreaterThan(0.001);
  });

  it('never samples a cold-start test item (ML-1M has 28 cold test interactions)', async () => {
    const ml1m = givenSplit(await readUserItemLists(ml1mTrain), await readUserItemLists(ml1mTest));
    expect(ml1m.coldStartItems.length).toBeGreaterThan(0);
    const cold = new Set(ml1m.coldStartItems);
    const sampler = new TripleSampler(ml1m.train, { seed: 3 });
    let coldNegatives = 0;
    for (const batch of sampler.epoch(0))
      for (const j of batch.negatives) if (cold.has(j)) coldNegatives++;
    expect(coldNegatives).toBe(0);
    expect(sampler.negatives.candidates.length).toBe(ml1m.numItems - ml1m.coldStartItems.length);
  });

  it('refuses a user whose positives cover every candidate', () => {
    const train = InteractionMatrix.fromPairs(2, 2, [0, 0, 1], [0, 1, 0]);
    expect(() => new NegativeSampler(train)).toThrow(DataError);
  });
});

describe('TripleSampler shuffle order', () => {
  it('puts every entry at a uniformly random position (Rao-Sandelius buckets, chi-square over deciles)', () => {
    // 20,000 entries: 8 buckets of about 2,500, so the bucketed path is the one tested.
    const users = Int32Array.from({ length: 20_000 }, (_, k) => k % 400);
    const items = Int32Array.from({ length: 20_000 }, (_, k) => Math.floor(k / 400));
    const train = InteractionMatrix.fromPairs(400, 60, users, items);
    const sampler = new TripleSampler(train, {
      seed: 8,
      candidates: Int32Array.from({ length: 60 }, (_, i) => i),
    });
    const tracked = [0, 9_999, 19_999].map(
      (e) => [train.entryUsers()[e]!, train.indices[e]!] as const,
    );
    const epochs = 3000;
    const deciles = tracked.map(() => new Float64Array(10));
    for (let epoch = 0; epoch < epochs; epoch++) {
      const pairs = sampler.shuffledPairsOf(epoch);
      tracked.forEach(([u, i], k) => {
        for (let p = 0; p < 20_000; p++) {
          if (pairs[2 * p] === u && pairs[2 * p + 1] === i) {
            deciles[k]![Math.floor(p / 2000)]!++;
            break;
          }
        }
      });
    }
    for (const counts of deciles) {
      let chi2 = 0;
      for (const c of counts) chi2 += (c - epochs / 10) ** 2 / (epochs / 10);
      expect(1 - chisquareCdf(chi2, 9)).toBeGreaterThan(0.001);
    }
  });
});

describe('TripleSampler options', () => {
  it('with-replacement order draws valid training pairs, reproducibly', () => {
    const sampler = new TripleSampler(gowalla.train, {
      seed: 5,
      order: 'with-replacement',
      batchSize: 1000,
    });
    const a = sampler.batch(4, 7);
    const b = new TripleSampler(gowalla.train, {
      seed: 5,
      order: 'with-replacement',
      batchSize: 1000,
    }).batch(4, 7);
    expect(a.users).toEqual(b.users);
    for (let t = 0; t < a.size; t++)
      expect(gowalla.train.has(a.users[t]!, a.positives[t]!)).toBe(true);
  });

  it('the last batch of an epoch is short; bad options are reported together', () => {
    const sampler = new TripleSampler(gowalla.train, { batchSize: 1000 });
    expect(sampler.batch(0, sampler.batchesPerEpoch - 1).size).toBe(810_128 % 1000);
    expect(() => sampler.batch(0, sampler.batchesPerEpoch)).toThrow(RangeError);
    expect(
      () => new TripleSampler(gowalla.train, { batchSize: 0, seed: 1.5, order: 'x' as never }),
    ).toThrow(
      expect.objectContaining({
        issues: [
          { path: 'seed', message: expect.any(String) },
          { path: 'batchSize', message: expect.any(String) },
          { path: 'order', message: expect.any(String) },
        ],
      }),
    );
    expect(() => new TripleSampler(gowalla.train, { batchSize: 0 })).toThrow(ConfigError);
  });
});
