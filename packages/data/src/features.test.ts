import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  alignItemFeatures,
  DataFormatError,
  generateSynthetic,
  IdMap,
  readFeatureMatrix,
  readNpy,
  readRawFeatures,
  toHalf,
  writeNpy,
  writeRawFeatures,
} from './index.js';
import { fixtures } from './test-support/paths.js';

const scratch = mkdtempSync(join(tmpdir(), 'advrec-features-'));
const npy = (name: string) => join(fixtures, 'npy', name);
// The fixtures were written by NumPy 2.4 (np.save): arange(15).reshape(5, 3) / 4 - 1.5.
const expected = Float32Array.from({ length: 15 }, (_, k) => k / 4 - 1.5);

describe('readNpy on files written by NumPy', () => {
  it.each(['f4-5x3.npy', 'f2-5x3.npy', 'f8-5x3.npy', 'f4-big-endian-5x3.npy'])(
    'reads %s',
    async (name) => {
      const m = await readNpy(npy(name));
      expect([m.rows, m.dimension]).toEqual([5, 3]);
      expect(m.data).toEqual(expected);
    },
  );

  it('decodes float16 edge values exactly (zero, -0, max, smallest normal and subnormal)', async () => {
    const m = await readNpy(npy('f2-edges-2x4.npy'));
    expect(m.fileType).toBe('float16');
    expect(Array.from(m.data)).toEqual([
      0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, 0.333251953125,
    ]);
  });
});

describe('writeNpy / raw layout', () => {
  it('writes byte-identical float32 .npy files to NumPy', async () => {
    const file = join(scratch, 'same.npy');
    await writeNpy(file, expected, 5, 3);
    expect(readFileSync(file)).toEqual(readFileSync(npy('f4-5x3.npy')));
  });

  it('writes float16 identical to NumPy (round to nearest even)', async () => {
    const file = join(scratch, 'same-f2.npy');
    await writeNpy(file, expected, 5, 3, { dtype: 'float16' });
    expect(readFileSync(file)).toEqual(readFileSync(npy('f2-5x3.npy')));
    expect(toHalf(65520)).toBe(0x7c00); // rounds to infinity
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00); // tie to even
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(toHalf(2 ** -25)).toBe(0); // tie to even at the bottom of the subnormals
  });

  it('round-trips the raw float32 layout and detects both by magic', async () => {
    const file = join(scratch, 'features.bin');
    const data = generateSynthetic({
      users: 5,
      items: 30,
      seed: 1,
      meanPerUser: 6,
      featureDimension: 16,
    }).itemFeatures!;
    await writeRawFeatures(file, data, 30, 16);
    const back = await readRawFeatures(file);
    expect(back.data).toEqual(data);
    expect((await readFeatureMatrix(file)).dimension).toBe(16);
    expect((await readFeatureMatrix(npy('f4-5x3.npy'))).rows).toBe(5);
  });
});

describe('alignItemFeatures', () => {
  it('aligns rows to dense item ids through the id map and marks items without features', async () => {
    const matrix = await readNpy(npy('f4-5x3.npy'));
    const items = IdMap.fromSourceIds(['m2', 'm4', 'm9']);
    const aligned = alignItemFeatures(matrix, items, { rowIds: ['m4', 'x', 'm2', 'y', 'z'] });
    expect(aligned.numItems).toBe(3);
    expect(Array.from(aligned.matrix.subarray(0, 3))).toEqual(Array.from(expected.subarray(6, 9))); // m2 = row 2
    expect(Array.from(aligned.matrix.subarray(3, 6))).toEqual(Array.from(expected.subarray(0, 3))); // m4 = row 0
    expect(Array.from(aligned.matrix.subarray(6, 9))).toEqual([0, 0, 0]);
    expect(Array.from(aligned.hasFeatures)).toEqual([1, 1, 0]);
    expect(Array.from(aligned.missingItems)).toEqual([2]);
    expect(aligned.unusedRows).toBe(3);
    expect(() =>
      alignItemFeatures(
        matrix,
        items,
        { rowIds: ['m4', 'x', 'm2', 'y', 'z'] },
        { missing: 'error' },
      ),
    ).toThrow(/a feature row for every item/);
  });

  it('aligns by numeric source id (row r = item r + offset), e.g. ML-1M posters keyed by MovieID', async () => {
    const matrix = await readNpy(npy('f4-5x3.npy'));
    const items = IdMap.fromSourceIds(['0', '3', '4']);
    const aligned = alignItemFeatures(
      matrix,
      items,
      { sourceIdOffset: -1 },
      { expectedDimension: 3 },
    );
    expect(Array.from(aligned.matrix.subarray(0, 3))).toEqual(Array.from(expected.subarray(3, 6))); // item "0" = row 1
    expect(Array.from(aligned.matrix.subarray(3, 6))).toEqual(
      Array.from(expected.subarray(12, 15)),
    ); // item "3" = row 4
    expect(Array.from(aligned.missingItems)).toEqual([2]); // item "4" would be row 5: there is none
    expect(aligned.unusedRows).toBe(3); // rows 0, 2 and 3 hold items -1, 1 and 2
    expect(Array.from(aligned.hasFeatures)).toEqual([1, 1, 0]);
  });

  it('rejects a duplicate row for one item', async () => {
    const matrix = await readNpy(npy('f4-5x3.npy'));
    expect(() =>
      alignItemFeatures(matrix, IdMap.fromSourceIds(['a']), { rowIds: ['a', 'a', 'b', 'c', 'd'] }),
    ).toThrow(DataFormatError);
  });
});
