/**
 * The data set catalogue: the named data sets advrec knows (files, checksums, layouts,
 * published baselines) and where their files are found on disk.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError } from '@advrec/data';
import type { ResolvedRunConfig } from '../config.js';

/** A file of a public data set: where it is published and its SHA-256 when known. */
export interface DatasetFile {
  /** The published URL. */
  readonly url: string;
  /** SHA-256 of the downloaded file as published, or `null` when no trusted value is known. */
  readonly sha256: string | null;
  /** Its size in bytes as published (checked with the SHA-256, and named when it differs). */
  readonly bytes?: number;
  /** `zip` archives are extracted (safely); plain files are stored under their name. */
  readonly kind: 'zip' | 'file';
  /**
   * For archives: SHA-256 of members checked after extraction (path inside the archive). A
   * mirror's repacked archive, whose own hash differs from the publisher's, is accepted when
   * every member pinned here matches (the files advrec reads are then the published ones).
   */
  readonly members?: Readonly<Record<string, string>>;
  /** For plain files: the name to store it under. */
  readonly saveAs?: string;
}

/** A published result on a data set, to compare a run with (same split and protocol). */
export interface PublishedBaseline {
  readonly model: string;
  /** Metric name (`recall@20`, ...) to value. */
  readonly metrics: Readonly<Record<string, number>>;
  /** Where the figure comes from (paper and table, or who measured it and how). */
  readonly source: string;
  readonly protocol: string;
}

/** A public data set the papers use, as `advrec datasets list` shows it. */
export interface DatasetEntry {
  readonly name: string;
  readonly description: string;
  /** Who publishes it (and which paper's repository). */
  readonly publisher: string;
  readonly files: readonly DatasetFile[];
  /** Folder names under `../shared/data` (or the data folder) that hold a copy. */
  readonly folders: readonly string[];
  /** The file (relative to the folder) that `data.source` points at, and its format. */
  readonly main: string;
  readonly format: NonNullable<ResolvedRunConfig['data']['format']>;
  /**
   * Other layouts of the same data set, tried in order after {@link DatasetEntry.main}: the
   * published archive's files when the shared copy is a preprocessed split (ML-1M: the
   * AMR/NCF `train.txt`/`test.txt` in `../shared`, GroupLens' `ratings.dat` once downloaded).
   */
  readonly alternatives?: readonly {
    readonly main: string;
    readonly format: NonNullable<ResolvedRunConfig['data']['format']>;
  }[];
  /** Published results on its standard split (none recorded: empty). */
  readonly baselines?: readonly PublishedBaseline[];
  /** The split the papers use on it. */
  readonly defaultSplit: 'leave-one-out' | 'given';
}

/**
 * The data sets `advrec datasets download` knows. SHA-256 values come from two sources: the
 * GroupLens archives' sizes and SHA-256 as TensorFlow Datasets records them
 * (`tensorflow_datasets/url_checksums/movielens.txt`), and, for files with a copy in
 * `../shared/data` (the files as published), hashes measured on that copy. Where neither is
 * available the value is `null`, and a download needs `--sha256` (or `--skip-checksum`, which
 * prints the hash so it can be pinned).
 */
export const DATASETS: readonly DatasetEntry[] = [
  {
    name: 'synthetic',
    description:
      'embedded: 2,000 users x 1,500 items with planted low-rank preferences and popularity skew (generated, nothing to download)',
    publisher: 'advrec',
    files: [],
    folders: [],
    main: '',
    format: 'auto',
    defaultSplit: 'leave-one-out',
  },
  {
    name: 'ml-100k',
    description: 'MovieLens 100K: 943 users, 1,682 movies, 100,000 ratings with timestamps',
    publisher: 'GroupLens (grouplens.org); used by NCF-style leave-one-out studies',
    files: [
      {
        url: 'https://files.grouplens.org/datasets/movielens/ml-100k.zip',
        sha256: '50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229',
        bytes: 4_924_029,
        kind: 'zip',
        members: {
          'ml-100k/u.data': '06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490',
        },
      },
    ],
    folders: ['ml-100k', 'movielens-100k'],
    main: 'u.data',
    format: 'movielens-100k',
    defaultSplit: 'leave-one-out',
  },
  {
    name: 'ml-1m',
    description:
      'MovieLens 1M: 6,040 users, 3,706 movies, 1,000,209 ratings (the AMR paper evaluates on it)',
    publisher: 'GroupLens (grouplens.org)',
    files: [
      {
        url: 'https://files.grouplens.org/datasets/movielens/ml-1m.zip',
        sha256: 'a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20',
        bytes: 5_917_549,
        kind: 'zip',
      },
    ],
    folders: ['ml-1m'],
    main: 'train.txt',
    format: 'user-item-lists',
    alternatives: [{ main: 'ratings.dat', format: 'movielens-dat' }],
    defaultSplit: 'given',
  },
  {
    name: 'gowalla',
    description:
      'Gowalla check-ins, 10-core, the NGCF/LightGCN split: 29,858 users, 40,981 items, 810,128 train + 217,242 test',
    publisher: 'LightGCN repository (gusye1234/LightGCN-PyTorch); APR evaluates on Gowalla',
    files: [
      {
        url: 'https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data/gowalla/train.txt',
        sha256: '0f086326b28a56c2e6dcb81d86ee72d4ccb7eed3a8d26788392356d8f51111cc',
        kind: 'file',
        saveAs: 'train.txt',
      },
      {
        url: 'https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data/gowalla/test.txt',
        sha256: '099a2a73924e4b754dc6efd730d764f492321b53c38eb93298850c83acf57be3',
        kind: 'file',
        saveAs: 'test.txt',
      },
    ],
    folders: ['gowalla'],
    baselines: [
      {
        model: 'MF-BPR',
        metrics: { 'recall@20': 0.1291, 'ndcg@20': 0.1109 },
        source: 'LightGCN paper (He et al., SIGIR 2020), MF-BPR on this split',
        protocol: 'full ranking of all items, training items excluded, the LightGCN test file',
      },
      {
        model: 'LightGCN',
        metrics: { 'recall@20': 0.183, 'ndcg@20': 0.1554 },
        source: 'LightGCN paper (He et al., SIGIR 2020)',
        protocol: 'full ranking of all items, training items excluded, the LightGCN test file',
      },
      {
        model: 'MF-BPR (Cornac 2.6.0, item bias, lr 0.05, L2 0.001, 1,300 epochs)',
        metrics: { 'recall@20': 0.1594, 'ndcg@20': 0.1297 },
        source: 'measured for advrec issue 15 with Cornac built from source (2 threads, 162 s)',
        protocol: 'full ranking of all items, training items excluded, the LightGCN test file',
      },
    ],
    main: 'train.txt',
    format: 'user-item-lists',
    defaultSplit: 'given',
  },
  {
    name: 'yelp2018',
    description: 'Yelp 2018, 10-core, the NGCF/LightGCN split (APR evaluates on an earlier Yelp)',
    publisher: 'LightGCN repository (gusye1234/LightGCN-PyTorch)',
    files: [
      {
        url: 'https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data/yelp2018/train.txt',
        sha256: null,
        kind: 'file',
        saveAs: 'train.txt',
      },
      {
        url: 'https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data/yelp2018/test.txt',
        sha256: null,
        kind: 'file',
        saveAs: 'test.txt',
      },
    ],
    folders: ['yelp2018'],
    main: 'train.txt',
    format: 'user-item-lists',
    defaultSplit: 'given',
  },
  {
    name: 'pinterest-20',
    description:
      'Pinterest, users with >= 20 pins, leave-one-out with 99 sampled test negatives (NCF; APR evaluates on Pinterest)',
    publisher: 'NCF repository (hexiangnan/neural_collaborative_filtering)',
    files: ['train.rating', 'test.rating', 'test.negative'].map((suffix) => ({
      url: `https://raw.githubusercontent.com/hexiangnan/neural_collaborative_filtering/master/Data/pinterest-20.${suffix}`,
      sha256: null,
      kind: 'file' as const,
      saveAs: `pinterest-20.${suffix}`,
    })),
    folders: ['pinterest-20'],
    baselines: (
      [
        ['ItemPop', 0.0294, 0.0485, 0.0085, 0.0116],
        ['MF-BPR', 0.2226, 0.3403, 0.0696, 0.0886],
        ['NeuMF', 0.2342, 0.3526, 0.0734, 0.0925],
        ['AMF (APR)', 0.2375, 0.3595, 0.0741, 0.0938],
      ] as const
    ).map(([model, hr50, hr100, ndcg50, ndcg100]) => ({
      model,
      metrics: { 'hr@50': hr50, 'hr@100': hr100, 'ndcg@50': ndcg50, 'ndcg@100': ndcg100 },
      source: 'APR paper (He et al., SIGIR 2018), Table 3, on the NCF Pinterest set',
      protocol:
        "full ranking of all items not in the user's training set, one held-out interaction per user (APR drew it at random; NCF's test.rating is one such draw, so figures compare, not match)",
    })),
    main: 'pinterest-20.train.rating',
    format: 'ncf',
    defaultSplit: 'given',
  },
];

/** Looks a data set up by name; unknown names list the known ones. */
export function datasetEntry(name: string, path = 'data.source'): DatasetEntry {
  const entry = DATASETS.find((d) => d.name === name);
  if (!entry)
    throw new ConfigError([
      {
        path,
        message: `unknown data set "${name}"; known: ${DATASETS.map((d) => d.name).join(', ')} (or give a path)`,
      },
    ]);
  return entry;
}

/**
 * Where downloaded data sets are cached: `ADVREC_DATA_DIR`, else
 * `$XDG_CACHE_HOME/advrec/datasets` (`~/.cache/advrec/datasets` when `XDG_CACHE_HOME` is not
 * set to an absolute path, as the XDG specification says).
 */
export function dataDirectory(): string {
  if (process.env.ADVREC_DATA_DIR) return process.env.ADVREC_DATA_DIR;
  const xdg = process.env.XDG_CACHE_HOME;
  const cache = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  return join(cache, 'advrec', 'datasets');
}

/** The download folder of advrec 0.1 (`~/.advrec/datasets`): still searched, never written. */
function legacyDataDirectory(): string {
  return join(homedir(), '.advrec', 'datasets');
}

/**
 * The shared copy beside the repository: `ADVREC_SHARED_DATA`, else the nearest
 * `../shared/data` from the working folder or one of its parents (so that commands run from
 * any folder of the repository find it), else `../shared/data`.
 */
export function sharedDataDirectory(): string {
  if (process.env.ADVREC_SHARED_DATA) return process.env.ADVREC_SHARED_DATA;
  for (let dir = resolve('.'); dirname(dir) !== dir; dir = dirname(dir)) {
    const candidate = join(dirname(dir), 'shared', 'data');
    if (existsSync(candidate)) return candidate;
  }
  return resolve('..', 'shared', 'data');
}

/** The folder holding a named data set's files, or `null` when it is not present. */
export function locateDataset(entry: DatasetEntry): string | null {
  return locateDatasetFile(entry)?.folder ?? null;
}

/** Whether a folder holds one of a data set's layouts (its main file or an alternative). */
export function datasetLayoutIn(
  entry: DatasetEntry,
  folder: string,
): { main: string; format: DatasetEntry['format'] } | null {
  for (const layout of [{ main: entry.main, format: entry.format }, ...(entry.alternatives ?? [])])
    if (existsSync(join(folder, layout.main))) return layout;
  return null;
}

/**
 * Where a named data set is: the first data folder (cache, shared copy, legacy folder) that
 * holds one of its layouts, with the file to read and its format; `null` when none does.
 */
export function locateDatasetFile(
  entry: DatasetEntry,
): { folder: string; main: string; format: DatasetEntry['format'] } | null {
  const roots = [dataDirectory(), sharedDataDirectory()];
  if (!process.env.ADVREC_DATA_DIR) roots.push(legacyDataDirectory());
  for (const root of roots)
    for (const folder of [entry.name, ...entry.folders]) {
      const candidate = join(root, folder);
      const layout = datasetLayoutIn(entry, candidate);
      if (layout) return { folder: candidate, ...layout };
    }
  return null;
}
