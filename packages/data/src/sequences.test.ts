import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DataError } from './errors.js';
import { readDelimited, readSequenceLog } from './readers.js';
import {
  SequenceBatchSampler,
  leaveLastOut,
  padHistory,
  sampleSequenceCandidates,
  sequencesFromLog,
} from './sequences.js';
import type { SequenceSplit } from './sequences.js';
import { amazonGames } from './test-support/paths.js';

async function logFrom(text: string) {
  const dir = await mkdtemp(join(tmpdir(), 'advrec-seq-'));
  const file = join(dir, 'log.tsv');
  await writeFile(file, text);
  return readDelimited(file, { delimiter: 'whitespace', header: false });
}

function splitOf(train: number[][], numItems: number): SequenceSplit {
  return {
    source: 'test',
    numUsers: train.length,
    numItems,
    train: train.map((s) => Int32Array.from(s)),
    validation: new Int32Array(train.length).fill(-1),
    test: new Int32Array(train.length).fill(-1),
  };
}

describe('sequences', () => {
  it('orders by timestamp when the log has them (ties in file order), else in file order', async () => {
    const timed = await logFrom('u a 1 30\nu b 1 10\nu c 1 30\nv a 1 5\n');
    const s = sequencesFromLog(timed);
    const name = (i: number) => timed.itemIdMap.toSource(i);
    expect(Array.from(s.sequences[timed.userIdMap.toDense('u')!]!, name)).toEqual(['b', 'a', 'c']);
    const plain = await logFrom('u c\nu a\nu b\n');
    expect(
      Array.from(sequencesFromLog(plain).sequences[0]!, (i) => plain.itemIdMap.toSource(i)),
    ).toEqual(['c', 'a', 'b']);
  });

  it('splits the last item for test and the one before for validation; short users keep all in train', () => {
    const split = leaveLastOut({
      source: 't',
      numUsers: 2,
      numItems: 9,
      sequences: [Int32Array.of(4, 5, 6, 7), Int32Array.of(1, 2)],
    });
    expect(Array.from(split.train[0]!)).toEqual([4, 5]);
    expect(split.validation[0]).toBe(6);
    expect(split.test[0]).toBe(7);
    expect(Array.from(split.train[1]!)).toEqual([1, 2]);
    expect(split.validation[1]).toBe(-1);
    expect(split.test[1]).toBe(-1);
  });

  it('reads the shared Amazon Games file as the SASRec paper describes it', async () => {
    const log = await readDelimited(amazonGames, { delimiter: 'whitespace', header: false });
    const split = leaveLastOut(sequencesFromLog(log));
    expect([split.numUsers, split.numItems, log.length]).toEqual([31013, 23715, 287107]);
    // 112 users have fewer than 3 items (the file is not strictly 5-core): all in train.
    const short = split.train.filter((s, u) => split.test[u]! < 0);
    expect(short.length).toBe(112);
    expect(short.every((s) => s.length < 3)).toBe(true);
    const trainTotal = split.train.reduce((n, s) => n + s.length, 0);
    expect(trainTotal).toBe(287107 - 2 * (31013 - 112));
    // The first user's lines: 6393, 13504, 14087, ... in file (time) order.
    expect(log.itemIdMap.toSource(split.train[log.userIdMap.toDense('1')!]![0]!)).toBe('6393');
  });
});

describe('SequenceBatchSampler', () => {
  const train = [[0, 1, 2, 3, 4, 5, 6, 7], [3, 4], [5], [8, 9, 0], [1, 3, 5, 7, 9]];
  const split = splitOf(train, 12);

  for (const bucketByLength of [true, false])
    it(`covers each user with 2+ items once per epoch, right-aligned, next items as targets (bucketByLength ${bucketByLength})`, () => {
      const sampler = new SequenceBatchSampler(split, {
        batchSize: 2,
        maxLength: 4,
        seed: 1,
        bucketByLength,
      });
      const batches = sampler.epoch(0);
      const users = batches.flatMap((b) => Array.from(b.users)).sort();
      expect(users).toEqual([0, 1, 3, 4]);
      for (const b of batches) {
        const longest = Math.max(...Array.from(b.users, (u) => Math.min(train[u]!.length - 1, 4)));
        expect(b.length).toBe(bucketByLength ? longest : 4);
        b.users.forEach((u, r) => {
          const seq = train[u]!;
          const n = Math.min(seq.length - 1, 4);
          const row = Array.from(b.inputs.subarray(r * b.length, (r + 1) * b.length));
          expect(row).toEqual([
            ...Array(b.length - n).fill(-1),
            ...seq.slice(seq.length - 1 - n, seq.length - 1),
          ]);
          const targets = Array.from(b.positives.subarray(r * b.length, (r + 1) * b.length));
          expect(targets).toEqual([...Array(b.length - n).fill(-1), ...seq.slice(seq.length - n)]);
          for (let t = 0; t < b.length; t++) {
            const negative = b.negatives[r * b.length + t]!;
            if (targets[t]! < 0) expect(negative).toBe(-1);
            else expect(seq.includes(negative)).toBe(false);
          }
        });
      }
      expect(batches.reduce((n, b) => n + b.targets, 0)).toBe(4 + 1 + 2 + 4);
    });

  it('is deterministic for (seed, epoch) and differs between epochs', () => {
    const a = new SequenceBatchSampler(split, { batchSize: 2, maxLength: 4, seed: 3 });
    const b = new SequenceBatchSampler(split, { batchSize: 2, maxLength: 4, seed: 3 });
    expect(a.epoch(2)).toEqual(b.epoch(2));
    const negatives = (e: number) => a.epoch(e).flatMap((x) => Array.from(x.negatives));
    expect(negatives(0)).not.toEqual(negatives(1));
  });

  it('names bad options and refuses data with nothing to learn', () => {
    expect(
      () => new SequenceBatchSampler(split, { batchSize: 0, maxLength: 1.5, seed: 0 }),
    ).toThrow(ConfigError);
    try {
      new SequenceBatchSampler(split, { batchSize: 0, maxLength: 1.5, seed: 0 });
    } catch (error) {
      expect((error as ConfigError).issues.map((i) => i.path)).toEqual(['batchSize', 'maxLength']);
    }
    expect(
      () =>
        new SequenceBatchSampler(splitOf([[1], [2]], 5), { batchSize: 2, maxLength: 3, seed: 0 }),
    ).toThrow(/no user has 2 or more training items/);
  });
});

describe('evaluation candidates', () => {
  it('pads histories on the left and keeps the most recent items', () => {
    expect(Array.from(padHistory(Int32Array.of(1, 2, 3), 5))).toEqual([-1, -1, 1, 2, 3]);
    expect(Array.from(padHistory(Int32Array.of(1, 2, 3), 2))).toEqual([2, 3]);
  });

  it('puts the target first and samples negatives outside the whole sequence', () => {
    const targets = Int32Array.of(3, -1, 7);
    const exclude = [[0, 1, 2, 3], [], [5, 6, 7]];
    const out = sampleSequenceCandidates(targets, exclude, 30, 20, 4);
    expect(out[0]).toBe(3);
    expect(out[2 * 21]).toBe(7);
    expect(Array.from(out.subarray(21, 42)).every((x) => x === -1)).toBe(true);
    for (const [u, base] of [
      [0, 0],
      [2, 42],
    ] as const)
      for (let k = 1; k < 21; k++) expect(exclude[u]!.includes(out[base + k]!)).toBe(false);
    expect(() => sampleSequenceCandidates(Int32Array.of(0), [[0, 1]], 2, 1, 0)).toThrow(DataError);
    // As many draws as there are items or more: refused, naming the option and the item count.
    expect(() => sampleSequenceCandidates(targets, exclude, 10, 10, 4)).toThrow(
      /negatives: must be an integer from 1 to 9 \(the data has 10 items\), got 10/,
    );
  });
});

describe('readSequenceLog', () => {
  async function write(text: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'advrec-seqlog-'));
    const file = join(dir, 'log.txt');
    await writeFile(file, text);
    return file;
  }
  const itemsOf = (seq: Int32Array, log: Awaited<ReturnType<typeof readSequenceLog>>) =>
    Array.from(seq, (i) => log.itemIdMap.toSource(i));

  it('orders by the third column when a line has three fields (a timestamp, not a rating)', async () => {
    const log = await readSequenceLog(await write('u a 30\nu b 10\nu c 20\n'));
    expect(itemsOf(sequencesFromLog(log).sequences[0]!, log)).toEqual(['b', 'c', 'a']);
  });

  it('keeps the file order with two fields, and reads the fourth field as time with four', async () => {
    const two = await readSequenceLog(await write('u a\nu b\nu c\n'));
    expect(itemsOf(sequencesFromLog(two).sequences[0]!, two)).toEqual(['a', 'b', 'c']);
    const four = await readSequenceLog(await write('u,a,5,300\nu,b,4,100\nu,c,3,200\n'));
    expect(itemsOf(sequencesFromLog(four).sequences[0]!, four)).toEqual(['b', 'c', 'a']);
  });

  it('names a timestamp that is not a number as a timestamp, with its file and line', async () => {
    const file = await write('u a 30\nu b NaN\n');
    await expect(readSequenceLog(file)).rejects.toThrow(
      new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: expected a numeric timestamp`),
    );
  });
});
