/**
 * Loading a run config's data: the catalogue's named data sets (fetched when missing), folders
 * and files in every supported layout, splits, item features, and the data set fingerprint.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  ConfigError,
  closestName,
  DataFormatError,
  IdMap,
  alignItemFeatures,
  generateSynthetic,
  givenSplit,
  holdOutValidation,
  leaveOneOut,
  loadAmrDataset,
  loadNcfDataset,
  ratioSplit,
  readDelimited,
  readFeatureMatrix,
  readMovieLens100K,
  readMovieLensRatingsDat,
  readMmrecInter,
  readUserItemLists,
  toImplicit,
} from '@advrec/data';
import type { Dataset, InteractionLog, ItemFeatures, SampledTestSet } from '@advrec/data';
import type { ResolvedRunConfig } from '../config.js';
import { withPathPrefix } from '../errors.js';

import { DATASETS, dataDirectory, locateDataset, locateDatasetFile } from './entries.js';
import type { DatasetEntry } from './entries.js';
export {
  DATASETS,
  dataDirectory,
  datasetEntry,
  datasetLayoutIn,
  locateDataset,
  locateDatasetFile,
  sharedDataDirectory,
} from './entries.js';
export type { DatasetEntry, DatasetFile, PublishedBaseline } from './entries.js';

/** Options of {@link loadData}. */
export interface LoadDataOptions {
  /**
   * Download a named data set that is in no data folder into the cache ({@link dataDirectory})
   * first, verified against its pinned SHA-256 (default true; `ADVREC_OFFLINE=1` turns it off).
   */
  readonly download?: boolean;
  /** Where to fetch from instead of the publisher (default: `ADVREC_DATASETS_MIRROR`). */
  readonly mirror?: string;
  /** Told once before a download starts. */
  readonly onDownload?: (message: string) => void;
  /** Download progress. */
  readonly onProgress?: (file: string, received: number, total: number | null) => void;
}

/**
 * Downloads a named data set into the cache when no data folder holds it and every file it
 * needs can be verified (a pinned SHA-256 for the file, or for the archive members read).
 * Data sets without pinned checksums are left to `advrec datasets download`, which asks for
 * one; {@link resolveSource} then says so.
 */
async function fetchIfMissing(source: string, options: LoadDataOptions): Promise<void> {
  const entry = DATASETS.find((d) => d.name === source);
  if (!entry || entry.files.length === 0 || locateDataset(entry) !== null) return;
  if (options.download === false || process.env.ADVREC_OFFLINE === '1') return;
  const verifiable = entry.files.every(
    (f) => f.sha256 !== null || (f.kind === 'zip' && Object.keys(f.members ?? {}).length > 0),
  );
  if (!verifiable) return;
  const mirror = options.mirror ?? process.env.ADVREC_DATASETS_MIRROR;
  const directory = dataDirectory();
  options.onDownload?.(
    `${entry.name} is not in ${directory}: downloading it from ${mirror ?? new URL(entry.files[0]!.url).origin} (SHA-256 checked; ADVREC_OFFLINE=1 turns this off)`,
  );
  const { assertFolderPath, downloadDataset } = await import('./fetch.js');
  assertFolderPath(directory, 'ADVREC_DATA_DIR');
  await mkdir(directory, { recursive: true });
  await downloadDataset(entry, {
    directory,
    ...(mirror ? { mirror } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
}

/** A loaded data set: the split, the sampled test negatives when the files give them, features. */
export interface LoadedData {
  readonly dataset: Dataset;
  readonly sampledTestSet: SampledTestSet | null;
  readonly itemFeatures: ItemFeatures | null;
  /** What was read (absolute paths). */
  readonly files: readonly string[];
  /** SHA-256 over the split's contents and id maps (see {@link datasetFingerprint}). */
  readonly fingerprint: string;
}

type Format = ResolvedRunConfig['data']['format'];

function detectFormat(path: string): Exclude<Format, 'auto'> {
  const isDir = existsSync(path) && statSync(path).isDirectory();
  if (isDir) {
    if (existsSync(join(path, 'pos.txt')) && existsSync(join(path, 'neg.txt'))) return 'amr';
    if (existsSync(join(path, 'u.data'))) return 'movielens-100k';
    if (existsSync(join(path, 'ratings.dat'))) return 'movielens-dat';
    if (existsSync(join(path, 'train.txt'))) return 'user-item-lists';
    if (readdirSync(path).filter((f) => f.endsWith('.inter')).length === 1) return 'mmrec';
  }
  const name = basename(path);
  if (name.endsWith('.inter')) return 'mmrec';
  if (name === 'u.data') return 'movielens-100k';
  if (name.endsWith('.dat')) return 'movielens-dat';
  if (name.endsWith('.train.rating') || existsSync(`${path}.train.rating`)) return 'ncf';
  if (name.endsWith('.txt')) return looksLikeRatingTable(path) ? 'csv' : 'user-item-lists';
  return 'csv';
}

function requirePath(path: string, field: string): string {
  if (!existsSync(path)) {
    const named = closestName(
      path,
      DATASETS.map((d) => d.name),
    );
    throw new DataFormatError(
      { file: path },
      `an existing file or folder (${field}), or a named data set (advrec datasets list)`,
      `no such path${named ? ` (did you mean the named data set ${named}: --data ${named}?)` : ''}`,
    );
  }
  return path;
}

/**
 * Whether a `.txt` file reads as a table (`user item weight`, `user item rating timestamp`)
 * rather than per-user lists (`user item item ...`): its first lines all have the same 3 or
 * 4 fields and one of the fields after the first two is not an integer.
 */
function looksLikeRatingTable(path: string): boolean {
  let text: string;
  try {
    const fd = openSync(path, 'r');
    try {
      const buffer = Buffer.alloc(16384);
      text = buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0)).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  const lines = text
    .split('\n')
    .slice(0, -1)
    .filter((l) => l.trim() !== '')
    .slice(0, 20);
  if (lines.length === 0) return false;
  const rows = lines.map((l) => l.trim().split(/[\s,;]+/));
  const width = rows[0]!.length;
  if ((width !== 3 && width !== 4) || rows.some((r) => r.length !== width)) return false;
  return rows.some((r) => r.slice(2).some((f) => !/^-?\d+$/.test(f)));
}

/** Resolves `data.source` (a name or a path) to a path and a format. */
export function resolveSource(
  data: ResolvedRunConfig['data'],
): { path: string; format: Exclude<Format, 'auto'>; entry: DatasetEntry | null } | null {
  if (data.source === 'synthetic') return null;
  const entry = DATASETS.find((d) => d.name === data.source) ?? null;
  if (entry) {
    const located = locateDatasetFile(entry);
    if (!located)
      throw new DataFormatError(
        { file: join(dataDirectory(), entry.name, entry.main) },
        `data set ${entry.name} (run: advrec datasets download ${entry.name}${entry.files.some((f) => f.sha256 === null && !(f.members && Object.keys(f.members).length)) ? '; no SHA-256 is pinned for its files, so pass --sha256 <file>=<hex> or --skip-checksum' : ''})`,
        'not downloaded',
      );
    return {
      path: join(located.folder, located.main),
      format: located.format as Exclude<Format, 'auto'>,
      entry,
    };
  }
  const path = resolve(requirePath(data.source, 'data.source'));
  const format = data.format === 'auto' ? detectFormat(path) : data.format;
  return { path, format, entry: null };
}

/**
 * The validation file of a given user-item-lists split: `data.validationPath`, else
 * `valid.txt` or `validation.txt` in the folder (what NGCF, LightGCN and MMRec publish, and
 * what `advrec datasets split` writes), else none.
 */
function givenValidationFile(data: ResolvedRunConfig['data'], folder: string): string | null {
  if (data.validationPath) return resolve(requirePath(data.validationPath, 'data.validationPath'));
  for (const name of ['valid.txt', 'validation.txt']) {
    const candidate = join(folder, name);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

function split(log: InteractionLog, data: ResolvedRunConfig['data']): Dataset {
  return withPathPrefix('data.split', () => splitLog(log, data));
}

function splitLog(log: InteractionLog, data: ResolvedRunConfig['data']): Dataset {
  const s = data.split;
  // `auto`: by timestamp when the log has them (an explicit latest / temporal without
  // timestamps is refused by the split, naming the option).
  const byTime = s.order === 'auto' ? log.timestamps !== null : s.order !== 'random';
  if (s.protocol === 'ratio')
    return ratioSplit(log, {
      testFraction: s.testFraction,
      order: byTime ? 'temporal' : 'random',
      seed: s.seed,
    });
  if (s.protocol === 'given')
    throw new ConfigError([
      {
        path: 'protocol',
        message: `"given" needs files that carry their split (${log.source} is one log; give a csv its test file with data.testPath or --test)`,
      },
    ]);
  return leaveOneOut(log, { order: byTime ? 'latest' : 'random', seed: s.seed });
}

/** The interactions of two logs (ids keep the first log's order, then the second's new ones). */
export function concatLogs(a: InteractionLog, b: InteractionLog): InteractionLog {
  const merge = (x: IdMap, y: IdMap): { map: IdMap; remap: Int32Array } => {
    const ids = [...x.toArray()];
    const known = new Set(ids);
    for (const id of y.toArray()) if (!known.has(id)) ids.push(id);
    const map = IdMap.inOrder(ids);
    return { map, remap: Int32Array.from(y.toArray(), (id) => map.toDense(id)) };
  };
  const users = merge(a.userIdMap, b.userIdMap);
  const items = merge(a.itemIdMap, b.itemIdMap);
  const n = a.length + b.length;
  const outUsers = new Int32Array(n);
  const outItems = new Int32Array(n);
  outUsers.set(a.users.subarray(0, a.length));
  outItems.set(a.items.subarray(0, a.length));
  for (let k = 0; k < b.length; k++) {
    outUsers[a.length + k] = users.remap[b.users[k]!]!;
    outItems[a.length + k] = items.remap[b.items[k]!]!;
  }
  const both = <T extends Float32Array | Float64Array>(
    x: T | null,
    y: T | null,
    make: (n: number) => T,
  ): T | null => {
    if (x === null || y === null) return null;
    const out = make(n);
    out.set(x.subarray(0, a.length));
    out.set(y.subarray(0, b.length), a.length);
    return out;
  };
  return {
    source: `${a.source} + ${b.source}`,
    userIdMap: users.map,
    itemIdMap: items.map,
    users: outUsers,
    items: outItems,
    ratings: both(a.ratings, b.ratings, (k) => new Float32Array(k)),
    timestamps: both(a.timestamps, b.timestamps, (k) => new Float64Array(k)),
    length: n,
  };
}

/** A delimited file, split by the config or by its given test (and validation) files. */
async function readCsvSplit(
  path: string,
  data: ResolvedRunConfig['data'],
  files: string[],
): Promise<Dataset> {
  files.push(path);
  const options = { encoding: data.encoding };
  const log = await readDelimited(path, options);
  if (data.testPath !== null && data.split.protocol !== 'given' && data.split.protocol !== 'auto')
    throw new ConfigError([
      {
        path: 'data.testPath',
        message: `a test file gives the split; it cannot be combined with data.split.protocol "${data.split.protocol}" (use "given" or "auto")`,
      },
    ]);
  if (data.testPath !== null) {
    const test = resolve(requirePath(data.testPath, 'data.testPath'));
    files.push(test);
    const validationFile =
      data.validation && data.validationPath
        ? resolve(requirePath(data.validationPath, 'data.validationPath'))
        : null;
    if (validationFile) files.push(validationFile);
    return givenSplit(log, await readDelimited(test, options), {
      name: path,
      ...(validationFile ? { validation: await readDelimited(validationFile, options) } : {}),
    });
  } else {
    if (data.validationPath)
      throw new ConfigError([
        {
          path: 'data.validationPath',
          message:
            'a validation file belongs to a given split: give its test file too (data.testPath)',
        },
      ]);
    return split(log, data);
  }
}

/** `train.txt` (and `test.txt`, `valid.txt`): the given split, or the union re-split. */
async function readUserItemListsSplit(
  path: string,
  isDir: boolean,
  data: ResolvedRunConfig['data'],
  files: string[],
): Promise<Dataset> {
  const train = isDir ? join(path, 'train.txt') : path;
  const test = data.testPath ?? join(dirname(train), 'test.txt');
  files.push(train);
  const trainLog = await readUserItemLists(train);
  const protocol = data.split.protocol;
  if (protocol === 'auto' || protocol === 'given') {
    if (data.testPath !== null) requirePath(test, 'data.testPath');
    if (existsSync(test)) {
      files.push(test);
      const validationFile = data.validation ? givenValidationFile(data, dirname(train)) : null;
      if (validationFile) files.push(validationFile);
      return givenSplit(trainLog, await readUserItemLists(test), {
        name: dirname(train),
        ...(validationFile ? { validation: await readUserItemLists(validationFile) } : {}),
      });
    }
    if (protocol === 'given') requirePath(test, 'data.testPath');
  }
  // Re-splitting files that carry a split: split the union of train and test.
  if (existsSync(test)) {
    files.push(test);
    return split(concatLogs(trainLog, await readUserItemLists(test)), data);
  }
  return split(trainLog, data);
}

/** Reads a file data source in its format, split (or with the split it carries). */
async function readSourceDataset(
  source: NonNullable<ReturnType<typeof resolveSource>>,
  data: ResolvedRunConfig['data'],
  files: string[],
): Promise<{ dataset: Dataset; sampledTestSet: SampledTestSet | null }> {
  let dataset: Dataset;
  let sampledTestSet: SampledTestSet | null = null;
  const { path, format } = source;
  if (data.testPath !== null && format !== 'csv' && format !== 'user-item-lists')
    throw new ConfigError([
      {
        path: 'data.testPath',
        message: `is read with format csv or user-item-lists only; format ${format} carries its own test set`,
      },
    ]);
  if (data.encoding !== 'utf-8' && format !== 'csv')
    throw new ConfigError([
      {
        path: 'data.encoding',
        message: `applies to format csv only (format ${format} has a fixed encoding)`,
      },
    ]);
  const isDir = statSync(path).isDirectory();
  const inFolder = (name: string): string => (isDir ? join(path, name) : path);
  switch (format) {
    case 'movielens-100k': {
      const file = inFolder('u.data');
      files.push(file);
      dataset = split(toImplicit(await readMovieLens100K(file)), data);
      break;
    }
    case 'movielens-dat': {
      const file = inFolder('ratings.dat');
      files.push(file);
      dataset = split(toImplicit(await readMovieLensRatingsDat(file)), data);
      break;
    }
    case 'csv': {
      dataset = await readCsvSplit(path, data, files);
      break;
    }
    case 'user-item-lists': {
      dataset = await readUserItemListsSplit(path, isDir, data, files);
      break;
    }
    case 'ncf': {
      const prefix = path.replace(/\.train\.rating$/, '');
      files.push(`${prefix}.train.rating`, `${prefix}.test.rating`, `${prefix}.test.negative`);
      ({ dataset, sampledTestSet } = await loadNcfDataset(prefix));
      break;
    }
    case 'amr': {
      files.push(join(path, 'pos.txt'), join(path, 'neg.txt'));
      ({ dataset, sampledTestSet } = await loadAmrDataset(path));
      break;
    }
    case 'mmrec': {
      const file = isDir
        ? join(
            path,
            readdirSync(path).find((f) => f.endsWith('.inter'))!,
          )
        : path;
      files.push(file);
      const { train, validation, test } = await readMmrecInter(file);
      // MMRec's own validation rows (x_label 1) are the validation split when asked for.
      dataset = givenSplit(train, test, {
        name: file,
        ...(data.validation && validation.length > 0 ? { validation } : {}),
      });
      break;
    }
  }
  return { dataset, sampledTestSet };
}

/** The item features a config names (aligned by the manifest's ids, or by row), or the synthetic ones. */
async function readItemFeatures(
  data: ResolvedRunConfig['data'],
  dataset: Dataset,
  plantedFeatures: { data: Float32Array; dimension: number } | null,
  files: string[],
): Promise<ItemFeatures | null> {
  let itemFeatures: ItemFeatures | null = null;
  if (data.features !== null) {
    const file = resolve(requirePath(data.features, 'data.features'));
    files.push(file);
    const manifestFile = `${file}.manifest.json`;
    const matrix = await readFeatureMatrix(file);
    if (existsSync(manifestFile)) {
      const manifest = (await readJsonFile(manifestFile, 'a features manifest')) as {
        itemIds?: unknown;
      } | null;
      if (manifest === null || typeof manifest !== 'object')
        throw new DataFormatError(
          { file: manifestFile },
          'a JSON object',
          JSON.stringify(manifest),
        );
      if (
        !Array.isArray(manifest.itemIds) ||
        !manifest.itemIds.every((id) => typeof id === 'string')
      )
        throw new DataFormatError({ file: manifestFile }, 'an itemIds array of strings', 'none');
      itemFeatures = alignItemFeatures(matrix, dataset.itemIdMap, {
        rowIds: manifest.itemIds as string[],
      });
    } else itemFeatures = alignItemFeatures(matrix, dataset.itemIdMap, { sourceIdOffset: 0 });
  } else if (plantedFeatures) {
    // The generator's feature rows follow its item ids i0, i1, ...
    const { data: values, dimension } = plantedFeatures;
    const rows = values.length / dimension;
    itemFeatures = alignItemFeatures(
      { data: values, rows, dimension, fileType: 'float32', source: 'synthetic' },
      dataset.itemIdMap,
      { rowIds: Array.from({ length: rows }, (_, i) => `i${i}`) },
    );
  }
  return itemFeatures;
}

/**
 * Loads the data set a run config names, splits it (seeded: the same config gives the same
 * split), carves validation when asked, and aligns item features when given.
 */
export async function loadData(
  data: ResolvedRunConfig['data'],
  options: LoadDataOptions = {},
): Promise<LoadedData> {
  let dataset: Dataset;
  let sampledTestSet: SampledTestSet | null = null;
  let plantedFeatures: { data: Float32Array; dimension: number } | null = null;
  const files: string[] = [];
  await fetchIfMissing(data.source, options);
  const source = resolveSource(data);
  if (source === null) {
    const synthetic = withPathPrefix('data.synthetic', () =>
      generateSynthetic({
        users: data.synthetic.users,
        items: data.synthetic.items,
        seed: data.synthetic.seed,
        featureDimension: data.synthetic.featureDimension,
      }),
    );
    dataset = split(synthetic.log, data);
    if (synthetic.itemFeatures)
      plantedFeatures = { data: synthetic.itemFeatures, dimension: synthetic.featureDimension };
  } else {
    ({ dataset, sampledTestSet } = await readSourceDataset(source, data, files));
  }
  if (data.validation && dataset.validation === null) {
    // The validation interaction follows data.split.order; `auto` lets the split decide
    // (latest when train has timestamps, else random), an explicit order is kept or refused.
    const order = data.split.order;
    dataset = withPathPrefix('data.split', () =>
      holdOutValidation(dataset, {
        seed: data.split.seed,
        ...(order === 'auto' ? {} : { order: order === 'random' ? 'random' : 'latest' }),
      }),
    );
  }
  const itemFeatures = await readItemFeatures(data, dataset, plantedFeatures, files);
  return { dataset, sampledTestSet, itemFeatures, files, fingerprint: datasetFingerprint(dataset) };
}

/**
 * SHA-256 over a split: user and item source ids in dense order, then train, validation and
 * test in CSR form. Two runs with the same fingerprint trained and were scored on the same data.
 */
export function datasetFingerprint(dataset: Dataset): string {
  const hash = createHash('sha256');
  for (let u = 0; u < dataset.numUsers; u++) hash.update(`${dataset.userIdMap.toSource(u)}\n`);
  hash.update('\u0000');
  for (let i = 0; i < dataset.numItems; i++) hash.update(`${dataset.itemIdMap.toSource(i)}\n`);
  for (const matrix of [dataset.train, dataset.validation, dataset.test]) {
    hash.update('\u0000');
    if (matrix === null) continue;
    hash.update(
      new Uint8Array(matrix.indptr.buffer, matrix.indptr.byteOffset, matrix.indptr.byteLength),
    );
    hash.update(
      new Uint8Array(matrix.indices.buffer, matrix.indices.byteOffset, matrix.indices.byteLength),
    );
  }
  return hash.digest('hex');
}

/** Reads and parses a JSON file; a corrupt one is a DataFormatError naming it. */
export async function readJsonFile(file: string, what = 'valid JSON'): Promise<unknown> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new DataFormatError(
      { file },
      what === 'valid JSON' ? what : `${what} (JSON)`,
      (cause as Error).message,
      { cause },
    );
  }
}
