import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  readDelimited,
  readMmrecInter,
  readMovieLens100K,
  readMovieLensRatingsDat,
  readUserItemLists,
  givenSplit,
  describe as describeDataset,
} from './index.js';
import {
  gowallaTest,
  gowallaTrain,
  ml1mTest,
  ml1mTrain,
  movielens100k,
} from './test-support/paths.js';

const scratch = mkdtempSync(join(tmpdir(), 'advrec-readers-'));
function write(name: string, content: string | Buffer): string {
  const file = join(scratch, name);
  writeFileSync(file, content);
  return file;
}

describe('readMovieLens100K on the real u.data', () => {
  it('gives 943 users, 1,682 items and 100,000 interactions with ratings and timestamps', async () => {
    const log = await readMovieLens100K(movielens100k);
    expect(log.userIdMap.size).toBe(943);
    expect(log.itemIdMap.size).toBe(1682);
    expect(log.length).toBe(100_000);
    // First line of u.data: 196 242 3 881250949; ids are 1-based, dense ids follow numeric order.
    expect(log.userIdMap.toSource(log.users[0]!)).toBe('196');
    expect(log.users[0]).toBe(195);
    expect(log.itemIdMap.toSource(log.items[0]!)).toBe('242');
    expect(log.ratings![0]).toBe(3);
    expect(log.timestamps![0]).toBe(881250949);
    let sum = 0;
    for (const r of log.ratings!) sum += r;
    expect(sum / log.length).toBeCloseTo(3.52986, 5); // GroupLens' published mean rating
  });
});

describe('readUserItemLists on the real per-user files', () => {
  it('reads Gowalla: 29,858 users, 40,981 items, 810,128 train + 217,242 test', async () => {
    const train = await readUserItemLists(gowallaTrain);
    const test = await readUserItemLists(gowallaTest);
    const dataset = givenSplit(train, test);
    const d = describeDataset(dataset);
    expect([d.users, d.items, d.train.interactions, d.test.interactions]).toEqual([
      29_858, 40_981, 810_128, 217_242,
    ]);
    expect(d.coldStartItems).toBe(0);
    expect(dataset.protocol.droppedTrainTestOverlap).toBe(0);
    // Source ids are 0..n-1, so dense ids equal them.
    expect(dataset.userIdMap.toSource(12345)).toBe('12345');
    expect(dataset.itemIdMap.toSource(40980)).toBe('40980');
    expect(dataset.train.row(0).subarray(0, 5)).toEqual(Int32Array.from([0, 1, 2, 3, 4]));
  });

  it('reads ML-1M: 6,040 users, 3,706 items, 800,167 + 200,042, 28 cold-start test interactions', async () => {
    const dataset = givenSplit(
      await readUserItemLists(ml1mTrain),
      await readUserItemLists(ml1mTest),
    );
    const d = describeDataset(dataset);
    expect([d.users, d.items, d.train.interactions, d.test.interactions]).toEqual([
      6040, 3706, 800_167, 200_042,
    ]);
    expect(d.test.users).toBe(6039); // user 4463 has no test line
    expect(d.coldStartTestInteractions).toBe(28);
    // Item ids are MovieID - 1 and not compacted: dense ids follow the numeric source order.
    expect(dataset.itemIdMap.toSource(dataset.numItems - 1)).toBe('3951');
    const dropped = givenSplit(
      await readUserItemLists(ml1mTrain),
      await readUserItemLists(ml1mTest),
      {
        coldStartItems: 'drop',
      },
    );
    expect(dropped.test.nnz).toBe(200_042 - 28);
    expect(dropped.protocol.droppedColdStartInteractions).toBe(28);
  });
});

describe('readDelimited', () => {
  it('detects the ml-latest ratings.csv header and maps columns by default position', async () => {
    const file = write(
      'ratings.csv',
      'userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n2,31,4.0,835355493\n',
    );
    const log = await readDelimited(file, { idFormat: 'integer' });
    expect(log.length).toBe(3);
    expect(log.userIdMap.toArray()).toEqual(['1', '2']);
    expect(log.itemIdMap.toArray()).toEqual(['31', '1029']);
    expect(Array.from(log.ratings!)).toEqual([2.5, 3, 4]);
    expect(Array.from(log.timestamps!)).toEqual([1260759144, 1260759179, 835355493]);
  });

  it('reads a quoted field with a line break (RFC 4180); an unclosed quote names its line', async () => {
    const file = write(
      'multiline.csv',
      'user,item,note\nu1,"item, one","first line\nsecond ""line"""\nu2,i2,plain\nu3,"i\n3",x\nu4,6" tv,stray quote\nu5,i5,y\n',
    );
    const log = await readDelimited(file, { columns: { user: 'user', item: 'item' } });
    expect(log.length).toBe(5);
    // A quote inside an unquoted field is a character, not the start of a multi-line field.
    expect([...log.itemIdMap.toArray()].sort()).toEqual(['6" tv', 'i\n3', 'i2', 'i5', 'item, one']);
    const broken = write('unclosed.csv', 'user,item\nu1,i1\nu2,"i2\nu3,i3\n');
    await expect(readDelimited(broken)).rejects.toThrow(/unclosed\.csv:3: .*closing double quote/);
  });

  it('maps columns by header name, string ids, quoted fields, CRLF and a BOM', async () => {
    const file = write(
      'amazon.csv',
      '\ufefftime,rating,"product id",reviewer\r\n1400000000,5,"B00,1",A2SUAM1J3GNN3B\r\n1300000000,4,B002,"A1""X"\r\n',
    );
    const log = await readDelimited(file, {
      columns: { user: 'reviewer', item: 'product id', rating: 'rating', timestamp: 'time' },
    });
    expect(log.userIdMap.toArray()).toEqual(['A1"X', 'A2SUAM1J3GNN3B']);
    expect(log.itemIdMap.toArray()).toEqual(['B00,1', 'B002']); // code-point order: ',' < '2'
    expect(Array.from(log.timestamps!)).toEqual([1400000000, 1300000000]);
  });

  it('detects the delimiter and no header for u.data-like tab files; reads gzip', async () => {
    const content = '5\t7\t1\t100\n5\t8\t2\t90\n6\t7\t3\t80\n';
    const plain = await readDelimited(write('plain.tsv', content));
    const zipped = await readDelimited(write('plain.tsv.gz', gzipSync(content)));
    for (const log of [plain, zipped]) {
      expect(log.length).toBe(3);
      expect(Array.from(log.ratings!)).toEqual([1, 2, 3]);
    }
  });

  it('parses dates with timestampFormat "date"', async () => {
    const log = await readDelimited(write('dates.csv', 'u,i,r,t\na,b,1,2014-01-02\n'), {
      timestampFormat: 'date',
      header: true,
    });
    expect(log.timestamps![0]).toBe(Date.UTC(2014, 0, 2));
  });

  it('reports every bad option at once', async () => {
    await expect(
      readDelimited(write('x.csv', '1,2\n'), {
        idFormat: 'number' as never,
        timestampFormat: 'unix' as never,
        header: 'yes' as never,
      }),
    ).rejects.toMatchObject({
      name: 'ConfigError',
      issues: [{ path: 'idFormat' }, { path: 'timestampFormat' }, { path: 'header' }],
    });
  });

  it('reads ratings.dat (::) with integer ids and normalises leading zeros', async () => {
    const log = await readMovieLensRatingsDat(
      write('ratings.dat', '1::1193::5::978300760\n01::661::3::978302109\n'),
    );
    expect(log.userIdMap.toArray()).toEqual(['1']);
    expect(log.length).toBe(2);
  });
});

describe('readLines via readers: chunk boundaries', () => {
  it('gives the same log whatever the chunk size (multi-byte UTF-8 split across chunks)', async () => {
    const lines = Array.from({ length: 200 }, (_, k) => `é${k % 7},ü${k % 11},${k % 5}`).join('\n');
    const file = write('utf8.csv', lines);
    const whole = await readDelimited(file);
    expect(whole.length).toBe(200);
    expect(whole.userIdMap.toArray()).toContain('é3');
    const { readLines } = await import('./lines.js');
    const small: string[] = [];
    await readLines(file, (line) => small.push(line), { chunkBytes: 7 });
    expect(small).toEqual(lines.split('\n'));
  });
});
describe('readMmrecInter', () => {
  it("reads MMRec's .inter layout into its train / validation / test logs", async () => {
    const file = write(
      'baby.inter',
      'userID\titemID\trating\ttimestamp\tx_label\n0\t10\t5.0\t100\t0\n0\t11\t4.0\t101\t0\n0\t12\t3.0\t102\t1\n0\t13\t5.0\t103\t2\n1\t10\t2.0\t104\t0\n1\t14\t1.0\t105\t2\n',
    );
    const { train, validation, test } = await readMmrecInter(file);
    expect([train.length, validation.length, test.length]).toEqual([3, 1, 2]);
    expect(Array.from(test.timestamps!)).toEqual([103, 105]);
    const dataset = givenSplit(train, test, { validation });
    expect(dataset.validation!.nnz).toBe(1);
    expect(dataset.itemIdMap.size).toBe(5);
    const bad = write('bad.inter', 'userID\titemID\tx_label\n0\t1\t3\n');
    await expect(readMmrecInter(bad)).rejects.toThrow(
      /bad\.inter:2: .*x_label of 0 \(train\), 1 \(validation\) or 2 \(test\)/,
    );
    const noLabel = write('nolabel.inter', 'userID\titemID\trating\n0\t1\t5\n');
    await expect(readMmrecInter(noLabel)).rejects.toThrow(/nolabel\.inter:1: .*no x_label column/);
  });
});
