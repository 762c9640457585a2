import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AdvrecError, DataFormatError, givenSplit } from './index.js';
import {
  alignItemFeatures,
  readDelimited,
  readFeatureMatrix,
  readMovieLens100K,
  readMovieLensRatingsDat,
  readNcfRatings,
  readNpy,
  readRawFeatures,
  readSampledTestSet,
  readUserItemLists,
  IdMap,
} from './index.js';
import { fixtures } from './test-support/paths.js';

interface BadCase {
  file: string;
  reader: string;
  error: string;
  line: number | null;
  expected: string;
  why: string;
  options?: Record<string, unknown>;
}

const cases = JSON.parse(readFileSync(join(fixtures, 'bad', 'cases.json'), 'utf8')) as BadCase[];

async function baseDataset() {
  const train = await readNcfRatings(join(fixtures, 'bad', 'base.train.rating'));
  const test = await readNcfRatings(join(fixtures, 'bad', 'base.test.rating'));
  return givenSplit(train, test, { extraItems: ['7', '8', '9'] });
}

async function run(c: BadCase): Promise<unknown> {
  const file = join(fixtures, c.file);
  switch (c.reader) {
    case 'movielens100k':
      return readMovieLens100K(file);
    case 'ratingsDat':
      return readMovieLensRatingsDat(file);
    case 'delimited':
      return readDelimited(file, c.options ?? {});
    case 'lists':
      return readUserItemLists(file);
    case 'ncfNegatives':
      return readSampledTestSet(file, await baseDataset(), { format: 'ncf' });
    case 'amrNegatives':
      return readSampledTestSet(file, await baseDataset(), { format: 'amr' });
    case 'npy':
      return readNpy(file);
    case 'raw':
      return readRawFeatures(file);
    case 'featuresRowIds': {
      const matrix = await readFeatureMatrix(file);
      return alignItemFeatures(matrix, IdMap.fromSourceIds(['0', '1', '2', '3', '4']), {
        rowIds: c.options!['rowIds'] as string[],
      });
    }
    case 'featuresDimension': {
      const matrix = await readFeatureMatrix(file);
      return alignItemFeatures(
        matrix,
        IdMap.fromSourceIds(['0', '1']),
        { sourceIdOffset: 0 },
        {
          expectedDimension: c.options!['expectedDimension'] as number,
        },
      );
    }
    default:
      throw new Error(`unknown reader ${c.reader} in cases.json`);
  }
}

describe('bad-input corpus (fixtures/bad/cases.json)', () => {
  it('has at least 20 malformed files', () => {
    expect(new Set(cases.map((c) => c.file)).size).toBeGreaterThanOrEqual(20);
  });

  it.each(cases.map((c) => [`${c.file}: ${c.why}`, c] as const))('%s', async (_name, c) => {
    let caught: unknown;
    try {
      await run(c);
    } catch (error) {
      caught = error;
    }
    expect(caught, 'the reader must throw').toBeDefined();
    expect(AdvrecError.isInstance(caught)).toBe(true);
    expect((caught as Error).name).toBe(c.error);
    const error = caught as DataFormatError;
    expect(DataFormatError.isInstance(error)).toBe(true);
    expect(error.file).toBe(join(fixtures, c.file));
    expect(error.line).toBe(c.line ?? undefined);
    expect(error.expected).toContain(c.expected);
    // The message names the file, the line and what was expected.
    expect(error.message).toContain(c.line === null ? c.file : `${c.file}:${c.line}`);
    expect(error.message).toContain(c.expected);
  });
});
