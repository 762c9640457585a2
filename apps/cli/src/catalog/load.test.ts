import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataFormatError, writeNpy } from '@advrec/data';
import { sharedDataFiles } from '@advrec/testing';
import { resolveRunConfig } from '../config.js';
import { runCli } from '../cli.js';
import { datasetFingerprint, loadData } from './load.js';

const folder = (): string => mkdtempSync(join(tmpdir(), 'advrec-datasets-'));
const dataConfig = (data: Record<string, unknown>) =>
  resolveRunConfig({ data, model: { name: 'mf' } }).data;

describe('loading data sets from a run config', () => {
  it('splits MovieLens 100K leave-one-out (latest) with validation, reproducibly', async () => {
    const config = dataConfig({ source: sharedDataFiles().movielens100k });
    const a = await loadData(config);
    const b = await loadData(config);
    expect(a.dataset.numUsers).toBe(943);
    expect(a.dataset.test.nnz).toBe(943);
    expect(a.dataset.validation!.nnz).toBe(943);
    expect(a.dataset.protocol.kind).toBe('leave-one-out');
    expect(a.fingerprint).toBe(b.fingerprint);
    // Another seed for a random split changes the fingerprint.
    const random = await loadData(
      dataConfig({ source: sharedDataFiles().movielens100k, split: { order: 'random', seed: 1 } }),
    );
    expect(random.fingerprint).not.toBe(a.fingerprint);
    expect(datasetFingerprint(random.dataset)).toBe(random.fingerprint);
  });

  it('uses the given split of train.txt + test.txt (Gowalla) and a ratio split when asked', async () => {
    const given = await loadData(
      dataConfig({ source: sharedDataFiles().gowallaTrain, validation: false }),
    );
    expect(given.dataset.protocol.kind).toBe('given');
    expect([given.dataset.train.nnz, given.dataset.test.nnz]).toEqual([810_128, 217_242]);
    expect(given.files).toHaveLength(2);
    const ratio = await loadData(
      dataConfig({
        source: sharedDataFiles().ml1mTrain,
        validation: false,
        split: { protocol: 'ratio', testFraction: 0.5, order: 'random' },
      }),
    );
    // Re-splitting files that carry a split splits their union: all 1,000,209 ML-1M pairs.
    expect(ratio.dataset.protocol.kind).toBe('ratio');
    expect(ratio.files).toHaveLength(2);
    expect(ratio.dataset.train.nnz + ratio.dataset.test.nnz).toBe(1_000_209);
    expect(ratio.dataset.numUsers).toBe(6040);
  });

  it('reads a given train / valid / test folder (LightGCN, MMRec layout) with its validation file', async () => {
    const dir = folder();
    const users = Array.from({ length: 30 }, (_, u) => u);
    // Each user: items u..u+5 in train, u+6 in valid, u+7 in test (items 0..36).
    const lines = (pick: (u: number) => number[]): string =>
      users.map((u) => [u, ...pick(u)].join(' ')).join('\n') + '\n';
    writeFileSync(
      join(dir, 'train.txt'),
      lines((u) => [u, u + 1, u + 2, u + 3, u + 4, u + 5]),
    );
    writeFileSync(
      join(dir, 'valid.txt'),
      lines((u) => [u + 6]),
    );
    writeFileSync(
      join(dir, 'test.txt'),
      lines((u) => [u + 7]),
    );
    const data = await loadData(dataConfig({ source: dir }));
    expect(data.dataset.protocol.kind).toBe('given');
    expect(data.dataset.protocol.validation).toEqual({ order: 'given', seed: 0 });
    expect([data.dataset.train.nnz, data.dataset.validation!.nnz, data.dataset.test.nnz]).toEqual([
      180, 30, 30,
    ]);
    expect(data.files.map((f) => f.split('/').at(-1))).toEqual([
      'train.txt',
      'test.txt',
      'valid.txt',
    ]);
    // validation: false reads train and test only.
    const without = await loadData(dataConfig({ source: dir, validation: false }));
    expect(without.dataset.validation).toBeNull();
    expect(without.files).toHaveLength(2);
    // Files without timestamps: the default order (auto) splits at random; an explicit
    // "latest" is refused with the field named, never silently replaced.
    const resplit = await loadData(
      dataConfig({ source: dir, split: { protocol: 'leave-one-out' } }),
    );
    expect(resplit.dataset.protocol.order).toBe('random');
    await expect(
      loadData(dataConfig({ source: dir, split: { protocol: 'leave-one-out', order: 'latest' } })),
    ).rejects.toThrow(/data\.split\.order.*"latest" needs timestamps/);
  });

  it('reads an MMRec .inter file with its split, and a user-item-weight .txt as a table', async () => {
    const dir = folder();
    const rows = ['userID\titemID\trating\ttimestamp\tx_label'];
    for (let u = 0; u < 20; u++) {
      for (let k = 0; k < 5; k++) rows.push(`${u}\t${u + k}\t5\t${k}\t0`);
      rows.push(`${u}\t${u + 5}\t4\t10\t1`, `${u}\t${u + 6}\t3\t11\t2`);
    }
    writeFileSync(join(dir, 'baby.inter'), `${rows.join('\n')}\n`);
    const mmrec = await loadData(dataConfig({ source: dir }));
    expect(mmrec.dataset.protocol.kind).toBe('given');
    expect([
      mmrec.dataset.train.nnz,
      mmrec.dataset.validation!.nnz,
      mmrec.dataset.test.nnz,
    ]).toEqual([100, 20, 20]);
    // user item weight (as some published splits ship): not per-user lists.
    const weights = join(dir, 'train.txt');
    writeFileSync(weights, '1 10 0.5\n1 11 1.0\n2 10 0.25\n2 12 2.5\n3 11 1\n3 12 1\n');
    const test = join(dir, 'test-weights.txt');
    writeFileSync(test, '1 12 1.0\n2 11 0.5\n3 10 1.0\n');
    const table = await loadData(
      dataConfig({ source: weights, testPath: test, validation: false }),
    );
    expect(table.dataset.protocol.kind).toBe('given');
    expect([...table.dataset.itemIdMap.toArray()].sort()).toEqual(['10', '11', '12']);
    expect([table.dataset.train.nnz, table.dataset.test.nnz]).toEqual([6, 3]);
  });

  it('reads NCF files with their sampled negatives and AMR folders', async () => {
    const dir = folder();
    writeFileSync(
      join(dir, 'tiny.train.rating'),
      '0\t0\t1\t1\n0\t1\t1\t2\n1\t1\t1\t3\n1\t2\t1\t4\n',
    );
    writeFileSync(join(dir, 'tiny.test.rating'), '0\t2\t1\t5\n1\t3\t1\t6\n');
    writeFileSync(join(dir, 'tiny.test.negative'), '(0,2)\t3\t4\n(1,3)\t0\t4\n');
    const ncf = await loadData(
      dataConfig({ source: join(dir, 'tiny.train.rating'), validation: false }),
    );
    expect(ncf.sampledTestSet!.negativesPerCase).toBe(2);
    expect(ncf.dataset.numItems).toBe(5);
    const amr = join(dir, 'amr');
    mkdirSync(amr);
    writeFileSync(join(amr, 'pos.txt'), '0 0\n0 1\n1 1\n1 2\n');
    writeFileSync(join(amr, 'neg.txt'), '2 3 4\n0 3 4\n');
    const loaded = await loadData(dataConfig({ source: amr, validation: false }));
    expect(loaded.sampledTestSet!.negativesPerCase).toBe(2);
    expect(loaded.dataset.test.nnz).toBe(2);
  });

  it('aligns a feature matrix by its manifest, and names the file when rows do not match', async () => {
    const dir = folder();
    writeFileSync(join(dir, 'log.csv'), 'user,item\na,x\na,y\nb,y\nb,z\nc,x\nc,z\n');
    const features = join(dir, 'f.npy');
    await writeNpy(features, Float32Array.from([1, 1, 2, 2, 3, 3]), 3, 2);
    writeFileSync(`${features}.manifest.json`, JSON.stringify({ itemIds: ['z', 'y', 'x'] }));
    const data = await loadData(
      dataConfig({
        source: join(dir, 'log.csv'),
        features,
        validation: false,
        split: { order: 'random' },
      }),
    );
    const itemFeatures = data.itemFeatures!;
    expect(itemFeatures.dimension).toBe(2);
    const row = (id: string): number[] => {
      const i = data.dataset.itemIdMap.toDense(id);
      return Array.from(itemFeatures.matrix.subarray(i * 2, i * 2 + 2));
    };
    expect([row('x'), row('y'), row('z')]).toEqual([
      [3, 3],
      [2, 2],
      [1, 1],
    ]);
    writeFileSync(`${features}.manifest.json`, JSON.stringify({ itemIds: ['z', 'y'] }));
    const error = await loadData(
      dataConfig({
        source: join(dir, 'log.csv'),
        features,
        validation: false,
        split: { order: 'random' },
      }),
    ).catch((e: unknown) => e);
    expect(DataFormatError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain(features);
  });

  it('names data sets that are not downloaded and paths that do not exist', async () => {
    process.env.ADVREC_DATA_DIR = folder();
    try {
      await expect(loadData(dataConfig({ source: 'pinterest-20' }))).rejects.toThrow(
        /expected data set pinterest-20 \(run: advrec datasets download pinterest-20; no SHA-256 is pinned/,
      );
    } finally {
      delete process.env.ADVREC_DATA_DIR;
    }
    await expect(loadData(dataConfig({ source: '/nowhere/u.data' }))).rejects.toThrow(
      /\/nowhere\/u\.data: expected an existing file/,
    );
  });

  it('gives the synthetic data set planted features aligned to its dense item ids', async () => {
    const data = await loadData(
      dataConfig({
        source: 'synthetic',
        synthetic: { users: 200, items: 100, featureDimension: 8 },
      }),
    );
    expect(data.itemFeatures!.dimension).toBe(8);
    expect(data.itemFeatures!.matrix).toHaveLength(data.dataset.numItems * 8);
  });
});

describe('datasets describe <name>', () => {
  it("Pinterest-20: the APR paper's Table 3 rows on the NCF set, printed with their protocol", async () => {
    // A tiny stand-in in the NCF layout (the real files cannot be downloaded here).
    const root = mkdtempSync(join(tmpdir(), 'advrec-pinterest-'));
    const folder = join(root, 'pinterest-20');
    mkdirSync(folder);
    const line = (u: number, i: number): string => `${u}\t${i}\t1\t0`;
    writeFileSync(
      join(folder, 'pinterest-20.train.rating'),
      `${[line(0, 0), line(0, 1), line(1, 1), line(1, 2), line(2, 0), line(2, 2)].join('\n')}\n`,
    );
    writeFileSync(
      join(folder, 'pinterest-20.test.rating'),
      `${[line(0, 2), line(1, 0), line(2, 1)].join('\n')}\n`,
    );
    writeFileSync(join(folder, 'pinterest-20.test.negative'), '(0,2)\t3\n(1,0)\t3\n(2,1)\t3\n');
    const saved = process.env.ADVREC_DATA_DIR;
    process.env.ADVREC_DATA_DIR = root;
    try {
      const out = { text: '', write: (s: string) => ((out.text += s), true) };
      const code = await runCli(['datasets', 'describe', 'pinterest-20'], {
        stdout: out as unknown as NodeJS.WritableStream,
        stderr: { write: () => true } as unknown as NodeJS.WritableStream,
      });
      expect(code).toBe(0);
      expect(out.text).toMatch(
        /MF-BPR: hr@50 0\.2226, hr@100 0\.3403, ndcg@50 0\.0696, ndcg@100 0\.0886 \(APR paper .*Table 3/,
      );
      expect(out.text).toMatch(
        /AMF \(APR\): hr@50 0\.2375, hr@100 0\.3595, ndcg@50 0\.0741, ndcg@100 0\.0938/,
      );
    } finally {
      if (saved === undefined) delete process.env.ADVREC_DATA_DIR;
      else process.env.ADVREC_DATA_DIR = saved;
    }
  });

  it("prints the published results on the data set's standard split", async () => {
    const out = { text: '', write: (s: string) => ((out.text += s), true) };
    const code = await runCli(['--json', 'datasets', 'describe', 'gowalla'], {
      stdout: out as unknown as NodeJS.WritableStream,
      stderr: { write: () => true } as unknown as NodeJS.WritableStream,
    });
    expect(code).toBe(0);
    const baselines = (
      JSON.parse(out.text) as { baselines: { model: string; metrics: Record<string, number> }[] }
    ).baselines;
    expect(baselines[0]).toMatchObject({
      model: 'MF-BPR',
      metrics: { 'recall@20': 0.1291, 'ndcg@20': 0.1109 },
    });
  });
});
