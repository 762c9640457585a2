import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataFormatError, readDelimited, readNpy, readUserItemLists, writeNpy } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'advrec-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A `.npy` v1 header declaring `shape`, followed by `dataBytes` zero bytes. */
function npyWithShape(name: string, shape: string, dataBytes: number): string {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + dict.length + 1) % 64);
  const header = `${dict}${' '.repeat(pad)}\n`;
  const prefix = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(prefix);
  prefix.writeUInt16LE(header.length, 8);
  const file = join(dir, name);
  writeFileSync(
    file,
    Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.alloc(dataBytes)]),
  );
  return file;
}

async function failure(promise: Promise<unknown>): Promise<DataFormatError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(DataFormatError.isInstance(error), String(error)).toBe(true);
  return error as DataFormatError;
}

describe('encodings', () => {
  it('a Latin-1 file read as UTF-8 is refused at the line of the first bad byte', async () => {
    const file = join(dir, 'latin1.csv');
    writeFileSync(file, Buffer.from('user,item\nJose,1\nJosé,2\nJosè,3\n', 'latin1'));
    const error = await failure(readDelimited(file));
    expect(error.message).toContain(`${file}:3`);
    expect(error.message).toContain('latin1');
    const log = await readDelimited(file, { encoding: 'latin1' });
    expect([...log.userIdMap.toArray()].sort()).toEqual(['Jose', 'José', 'Josè'].sort());
  });

  it('the bad byte is found on its line when a line spans two reads', async () => {
    const file = join(dir, 'latin1-chunks.csv');
    const good = Array.from({ length: 50 }, (_, k) => `u${k},i${k}`).join('\n');
    writeFileSync(
      file,
      Buffer.concat([Buffer.from(`${good}\nJos`), Buffer.from([0xe9]), Buffer.from(',x\n')]),
    );
    const error = await failure(readDelimited(file, { header: false }));
    expect(error.message).toContain(`${file}:51`);
  });

  it('a UTF-8 file with accents reads unchanged', async () => {
    const file = join(dir, 'utf8.csv');
    writeFileSync(file, 'José,1\nJosè,2\n');
    const log = await readDelimited(file, { header: false });
    expect([...log.userIdMap.toArray()].sort()).toEqual(['José', 'Josè'].sort());
  });
});

describe('a file without line ends', () => {
  it('is refused at its first line once it passes 16 Mi characters, not with a V8 RangeError', async () => {
    const file = join(dir, 'one-line.csv');
    writeFileSync(file, `u,i\n${'1,'.repeat(9 * 2 ** 20)}`);
    const error = await failure(readDelimited(file));
    expect(error.message).toContain(`${file}:2`);
    expect(error.message).toContain('at most 16 Mi characters');
  });
});

describe('ids beyond 2^53', () => {
  it('integer ids written with leading zeros stay distinct beyond 2^53', async () => {
    const file = join(dir, 'big.csv');
    writeFileSync(file, '09007199254740992,1\n09007199254740993,1\n007,1\n7,2\n');
    const log = await readDelimited(file, { header: false, idFormat: 'integer' });
    expect([...log.userIdMap.toArray()].sort()).toEqual(
      ['9007199254740992', '9007199254740993', '7'].sort(),
    );
  });

  it('a user-item list id of 2^53 names the limit and the way out', async () => {
    const file = join(dir, 'lists.txt');
    writeFileSync(file, '1 2 3\n9007199254740992 4\n');
    const error = await failure(readUserItemLists(file));
    expect(error.message).toContain(`${file}:2`);
    expect(error.message).toContain('2^53 - 1');
    expect(error.message).toContain('"string"');
    writeFileSync(file, '9007199254740991 4\n');
    expect((await readUserItemLists(file)).userIdMap.toArray()).toEqual(['9007199254740991']);
  });
});

describe('.npy headers that do not match their data', () => {
  it('a header claiming (51, 4) over 51 x 8 float32 values is refused, naming the real shape', async () => {
    const file = npyWithShape('wrong-shape.npy', '(51, 4)', 51 * 8 * 4);
    const error = await failure(readNpy(file));
    expect(error.message).toContain('51 x 4');
    expect(error.message).toContain('the data is 51 x 8');
  });

  it('a shape with zero rows or zero columns is refused before anything is allocated', async () => {
    const rows0 = await failure(readNpy(npyWithShape('zero-rows.npy', '(0, 4000000000)', 0)));
    expect(rows0.message).toContain('at least one row and one column');
    const columns0 = await failure(readNpy(npyWithShape('zero-cols.npy', '(51, 0)', 0)));
    expect(columns0.message).toContain('shape (51, 0)');
  });

  it('a truncated .npy is refused with both sizes', async () => {
    const file = npyWithShape('short.npy', '(10, 10)', 399);
    const error = await failure(readNpy(file));
    expect(error.message).toContain('truncated');
  });

  it('a header declaring more values than memory holds is refused by size, not by a RangeError', async () => {
    // The file is as long as its header says (a sparse file), but 2^33 floats cannot be held.
    const file = npyWithShape('huge.npy', '(65536, 131072)', 0);
    const { truncateSync } = await import('node:fs');
    truncateSync(file, 128 + 65536 * 131072 * 4);
    const error = await failure(readNpy(file));
    expect(error.message).toMatch(/fits in memory/);
  });

  it('a well-formed .npy still reads', async () => {
    const file = join(dir, 'ok.npy');
    await writeNpy(file, Float32Array.from([1, 2, 3, 4, 5, 6]), 2, 3);
    const read = await readNpy(file);
    expect([read.rows, read.dimension, Array.from(read.data)]).toEqual([2, 3, [1, 2, 3, 4, 5, 6]]);
  });
});
