import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DataError,
  generateSampledTestSet,
  generateSynthetic,
  givenSplit,
  holdOutValidation,
  leaveOneOut,
  loadAmrDataset,
  loadNcfDataset,
  readMovieLens100K,
  readSampledTestSet,
  writeSampledTestSet,
} from './index.js';
import { fixtures, movielens100k } from './test-support/paths.js';

const scratch = mkdtempSync(join(tmpdir(), 'advrec-sampled-'));

describe('generateSampledTestSet on ML-100K leave-one-out', async () => {
  const dataset = holdOutValidation(
    leaveOneOut(await readMovieLens100K(movielens100k), { seed: 1 }),
  );
  const set = generateSampledTestSet(dataset, { negatives: 99, seed: 4 });

  it('draws 99 distinct negatives per test user (NCF protocol), none of them an interaction of the user', () => {
    expect(set.numCases).toBe(943);
    expect(set.negatives.length).toBe(943 * 99);
    let bad = 0;
    for (let c = 0; c < set.numCases; c++) {
      const u = set.users[c]!;
      expect(dataset.test.has(u, set.positives[c]!)).toBe(true);
      const row = set.negatives.subarray(c * 99, (c + 1) * 99);
      expect(new Set(row).size).toBe(99);
      for (const j of row) {
        if (dataset.train.has(u, j) || dataset.test.has(u, j) || dataset.validation!.has(u, j))
          bad++;
      }
    }
    expect(bad).toBe(0);
  });

  it('is reproducible per seed', () => {
    expect(generateSampledTestSet(dataset, { negatives: 99, seed: 4 }).negatives).toEqual(
      set.negatives,
    );
    expect(generateSampledTestSet(dataset, { negatives: 99, seed: 5 }).negatives).not.toEqual(
      set.negatives,
    );
  });

  it('takes validation cases when asked, with 999 negatives (AMR) where the catalogue allows', () => {
    const light = holdOutValidation(
      leaveOneOut(generateSynthetic({ users: 400, items: 1500, seed: 3, popularity: 0.3 }).log),
    );
    const validation = generateSampledTestSet(light, { negatives: 999, split: 'validation' });
    expect(validation.numCases).toBe(400);
    expect(validation.negativesPerCase).toBe(999);
    for (let c = 0; c < 400; c++)
      expect(light.validation!.has(validation.users[c]!, validation.positives[c]!)).toBe(true);
  });

  it('round-trips through the NCF .test.negative layout with source ids', async () => {
    const file = join(scratch, 'ml100k.test.negative');
    await writeSampledTestSet(file, set, dataset, 'ncf');
    const firstLine = readFileSync(file, 'utf8').split('\n')[0]!;
    expect(firstLine.startsWith(`(1,${dataset.itemIdMap.toSource(set.positives[0]!)})\t`)).toBe(
      true,
    );
    expect(firstLine.split('\t')).toHaveLength(100);
    const back = await readSampledTestSet(file, dataset);
    expect(back.users).toEqual(set.users);
    expect(back.positives).toEqual(set.positives);
    expect(back.negatives).toEqual(set.negatives);
    expect(back.source).toBe(file);
    expect(readdirSync(scratch).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses 999 negatives on ML-100K, naming user 405 (737 ratings, 945 items left)', () => {
    expect(() => generateSampledTestSet(dataset, { negatives: 999 })).toThrow(
      new DataError('user 405 has 945 items to sample from, fewer than the 999 negatives asked'),
    );
  });
});

describe('AMR and NCF repository layouts', () => {
  it('loads an AMR folder (pos.txt + neg.txt) and writes the same neg.txt back', async () => {
    const { log } = generateSynthetic({ users: 40, items: 60, seed: 2 });
    const dataset = leaveOneOut(log, { order: 'random', seed: 2 });
    const folder = mkdtempSync(join(scratch, 'amr-'));
    // Build AMR-style files with ids equal to the dense ids (as the AMR repository has).
    const pairs: string[] = [];
    for (const [u, i] of dataset.train.pairs()) pairs.push(`${u} ${i}`);
    writeFileSync(join(folder, 'pos.txt'), pairs.join('\n') + '\n');
    const negLines: string[] = [];
    const set = generateSampledTestSet(dataset, { negatives: 20, seed: 3 });
    for (let c = 0; c < set.numCases; c++) {
      negLines.push([set.positives[c], ...set.negatives.subarray(c * 20, (c + 1) * 20)].join(' '));
    }
    writeFileSync(join(folder, 'neg.txt'), negLines.join('\n') + '\n');
    const loaded = await loadAmrDataset(folder);
    expect(loaded.dataset.train.nnz).toBe(dataset.train.nnz);
    expect(loaded.dataset.test.nnz).toBe(40);
    expect(loaded.sampledTestSet.negativesPerCase).toBe(20);
    const out = join(folder, 'neg-again.txt');
    await writeSampledTestSet(out, loaded.sampledTestSet, loaded.dataset, 'amr');
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(folder, 'neg.txt'), 'utf8'));
  });

  it('loads the NCF triple of files (.train.rating, .test.rating, .test.negative)', async () => {
    const prefix = join(scratch, 'tiny');
    writeFileSync(
      `${prefix}.train.rating`,
      readFileSync(join(fixtures, 'bad', 'base.train.rating')),
    );
    writeFileSync(`${prefix}.test.rating`, readFileSync(join(fixtures, 'bad', 'base.test.rating')));
    writeFileSync(`${prefix}.test.negative`, '(0,3)\t7\t8\t9\n(1,4)\t7\t8\t9\n(2,6)\t7\t8\t0\n');
    const { dataset, sampledTestSet } = await loadNcfDataset(prefix);
    expect(dataset.numItems).toBe(10); // 0..6 from ratings, 7..9 only as negatives
    expect(sampledTestSet.numCases).toBe(3);
    expect(
      Array.from(sampledTestSet.negatives.subarray(6), (i) => dataset.itemIdMap.toSource(i)),
    ).toEqual(['7', '8', '0']);
    const given = givenSplit(
      (await import('./index.js')).generateSynthetic({
        users: 5,
        items: 10,
        seed: 1,
        meanPerUser: 5,
      }).log,
      (await import('./index.js')).generateSynthetic({
        users: 5,
        items: 10,
        seed: 2,
        meanPerUser: 5,
      }).log,
    );
    expect(given.numUsers).toBe(5);
  });
});
