import { join } from 'node:path';
import { DataFormatError } from './errors.js';
import { givenSplit, type Dataset } from './dataset.js';
import { InteractionLogBuilder, type InteractionLog } from './interaction-log.js';
import { readLines } from './lines.js';
import { readAmrPositives, readNcfRatings } from './readers.js';
import { readSampledTestSet, type SampledTestSet } from './sampled-test-set.js';

/** A data set published with fixed sampled negatives (NCF / APR repository, AMR repository). */
export interface DatasetWithNegatives {
  readonly dataset: Dataset;
  readonly sampledTestSet: SampledTestSet;
}

/**
 * Loads the NCF files of the APR repository: `<prefix>.train.rating`, `<prefix>.test.rating`
 * and `<prefix>.test.negative` (99 negatives per line). Items that occur only as sampled
 * negatives still belong to the catalogue.
 */
export async function loadNcfDataset(prefix: string): Promise<DatasetWithNegatives> {
  const train = await readNcfRatings(`${prefix}.train.rating`);
  const test = await readNcfRatings(`${prefix}.test.rating`);
  const negativeFile = `${prefix}.test.negative`;
  const extraItems = await collectNegativeItems(negativeFile, 'ncf');
  const dataset = givenSplit(train, test, { extraItems, name: prefix });
  const sampledTestSet = await readSampledTestSet(negativeFile, dataset, { format: 'ncf' });
  return { dataset, sampledTestSet };
}

/**
 * Loads the AMR repository's files from a folder: `pos.txt` (training pairs) and `neg.txt`
 * (line `r` = user `r`: its test positive, then its sampled negatives).
 */
export async function loadAmrDataset(folder: string): Promise<DatasetWithNegatives> {
  const train = await readAmrPositives(join(folder, 'pos.txt'));
  const negativeFile = join(folder, 'neg.txt');
  const test = await readAmrTestPositives(negativeFile);
  const extraItems = await collectNegativeItems(negativeFile, 'amr');
  const dataset = givenSplit(train, test, { extraItems, name: folder });
  const sampledTestSet = await readSampledTestSet(negativeFile, dataset, { format: 'amr' });
  return { dataset, sampledTestSet };
}

/** The test positives of an AMR `neg.txt`: (row index, first item) per non-blank line. */
export async function readAmrTestPositives(file: string): Promise<InteractionLog> {
  const builder = new InteractionLogBuilder(file, false, false);
  let row = -1;
  await readLines(file, (line, lineNumber) => {
    const tokens = line.trim().split(/\s+/);
    if (tokens[0] === '') return;
    row++;
    if (!/^\d+$/.test(tokens[0]!))
      throw new DataFormatError({ file, line: lineNumber }, 'an integer test item id', tokens[0]);
    builder.push(builder.addUser(String(row)), builder.addItem(String(Number(tokens[0]))));
  });
  if (builder.length === 0)
    throw new DataFormatError({ file }, 'at least one test line', 'no lines');
  return builder.finish();
}

async function collectNegativeItems(file: string, format: 'ncf' | 'amr'): Promise<Set<string>> {
  const items = new Set<string>();
  await readLines(file, (line, lineNumber) => {
    const body = format === 'ncf' ? line.replace(/^\s*\([^)]*\)/, '') : line;
    for (const token of body.trim().split(/\s+/)) {
      if (token === '') continue;
      if (!/^\d+$/.test(token))
        throw new DataFormatError({ file, line: lineNumber }, 'integer item ids', token);
      items.add(String(Number(token)));
    }
  });
  return items;
}
