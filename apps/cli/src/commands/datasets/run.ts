import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { ConfigError, describe, formatDescription } from '@advrec/data';
import type { InteractionMatrix, Dataset } from '@advrec/data';
import type { ResolvedRunConfig } from '../../config.js';
import { dataLoading, downloadBars, emit, textTable } from '../../run-folder/context.js';
import type { CommandContext } from '../../run-folder/context.js';
import {
  DATASETS,
  dataDirectory,
  datasetEntry,
  datasetLayoutIn,
  loadData,
  locateDataset,
} from '../../catalog/load.js';
import { assertFolderPath, downloadDataset } from '../../catalog/fetch.js';
import { toJson, writeText } from '../../run-folder/runs.js';

/** Split flags shared by `datasets describe` and `datasets split`. */
export interface SplitFlags {
  readonly format?: ResolvedRunConfig['data']['format'];
  readonly test?: string;
  readonly validationFile?: string;
  readonly encoding?: 'utf-8' | 'latin1';
  readonly protocol?: ResolvedRunConfig['data']['split']['protocol'];
  readonly order?: ResolvedRunConfig['data']['split']['order'];
  readonly testFraction?: number;
  readonly seed?: number;
  readonly validation?: boolean;
}

function dataConfig(
  source: string,
  flags: SplitFlags,
  validationByDefault: boolean,
): ResolvedRunConfig['data'] {
  return {
    source,
    format: flags.format ?? 'auto',
    testPath: flags.test ?? null,
    validationPath: flags.validationFile ?? null,
    encoding: flags.encoding ?? 'utf-8',
    split: {
      protocol: flags.protocol ?? 'auto',
      order: flags.order ?? 'auto',
      testFraction: flags.testFraction ?? 0.2,
      seed: flags.seed ?? 42,
    },
    validation: flags.validation ?? validationByDefault,
    features: null,
    synthetic: { users: 2000, items: 1500, featureDimension: 0, seed: 42 },
  };
}

/** `advrec datasets list`. */
export function listCommand(context: CommandContext): number {
  const rows = DATASETS.map((d) => ({
    name: d.name,
    description: d.description,
    publisher: d.publisher,
    location: d.name === 'synthetic' ? 'embedded' : (locateDataset(d) ?? 'not downloaded'),
    checksums:
      d.files.length === 0
        ? 'n/a'
        : d.files.every((f) => f.sha256 !== null)
          ? 'pinned'
          : d.files.every((f) => f.sha256 !== null || f.members)
            ? 'archive members pinned'
            : 'not pinned (needs --sha256)',
  }));
  emit(context, { dataDirectory: dataDirectory(), datasets: rows }, () =>
    [
      textTable(
        ['name', 'location', 'checksums', 'description'],
        rows.map((r) => [r.name, r.location, r.checksums, r.description]),
      ),
      `download folder: ${dataDirectory()} (ADVREC_DATA_DIR)`,
    ].join('\n'),
  );
  return 0;
}

/** `advrec datasets describe <path-or-name>`. */
export async function describeCommand(
  source: string,
  flags: SplitFlags,
  context: CommandContext,
): Promise<number> {
  // As train reads it: a given validation file when there is one, else carved from train.
  const data = await loadData(dataConfig(source, flags, true), dataLoading(context));
  const description = describe(data.dataset);
  // A named data set: the published results on its standard split, to compare runs with.
  const baselines = DATASETS.find((d) => d.name === source)?.baselines ?? [];
  emit(
    context,
    { ...description, fingerprint: data.fingerprint, files: data.files, baselines },
    () =>
      [
        `${formatDescription(description)}\n  fingerprint ${data.fingerprint}`,
        ...(baselines.length > 0
          ? [
              '  published results on this split:',
              ...baselines.map(
                (b) =>
                  `    ${b.model}: ${Object.entries(b.metrics)
                    .map(([k, v]) => `${k} ${v}`)
                    .join(', ')} (${b.source}; ${b.protocol})`,
              ),
            ]
          : []),
      ].join('\n'),
  );
  return 0;
}

function writeLists(matrix: InteractionMatrix, dataset: Dataset): string {
  const lines: string[] = [];
  for (let u = 0; u < matrix.numUsers; u++) {
    const from = matrix.indptr[u]!;
    const to = matrix.indptr[u + 1]!;
    if (to === from) continue;
    const items: string[] = [];
    for (let p = from; p < to; p++) items.push(dataset.itemIdMap.toSource(matrix.indices[p]!));
    lines.push(`${dataset.userIdMap.toSource(u)} ${items.join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `advrec datasets split <path-or-name> --out <dir>`: writes train/validation/test as user-item lists. */
export async function splitCommand(
  source: string,
  flags: SplitFlags & { out: string; force?: boolean },
  context: CommandContext,
): Promise<number> {
  const config = dataConfig(source, flags, false);
  const data = await loadData(config, dataLoading(context));
  const out = resolve(flags.out);
  const { dataset } = data;
  const targets = ['train.txt', 'test.txt', 'validation.txt', 'split.json'].map((f) =>
    join(out, f),
  );
  // Never write over the files the split was read from, --force or not.
  const read = new Set(data.files.map((f) => resolve(f)));
  const clash = targets.find((t) => read.has(t));
  if (clash)
    throw new ConfigError([
      {
        path: '--out',
        message: `${clash} is a file this split was read from; write the split to another folder`,
      },
    ]);
  await mkdir(out, { recursive: true }).catch((error: { code?: string }) => {
    throw error.code === 'EEXIST' || error.code === 'ENOTDIR'
      ? new ConfigError([{ path: '--out', message: `${out} is a file, not a folder` }])
      : error;
  });
  const existing = targets.filter((t) => existsSync(t));
  if (existing.length > 0 && !flags.force)
    throw new ConfigError([
      {
        path: '--out',
        message: `${out} already holds ${existing.map((t) => relative(out, t)).join(', ')}; choose another folder or pass --force to replace them`,
      },
    ]);
  const written = ['train.txt', 'test.txt'];
  await writeText(join(out, 'train.txt'), writeLists(dataset.train, dataset));
  await writeText(join(out, 'test.txt'), writeLists(dataset.test, dataset));
  if (dataset.validation) {
    await writeText(join(out, 'validation.txt'), writeLists(dataset.validation, dataset));
    written.push('validation.txt');
  }
  const description = describe(dataset);
  await writeText(
    join(out, 'split.json'),
    toJson({ source, config, fingerprint: data.fingerprint, description }),
  );
  emit(
    context,
    { folder: out, files: [...written, 'split.json'], fingerprint: data.fingerprint, description },
    () =>
      `${formatDescription(description)}\nwritten: ${written.map((f) => join(out, f)).join(', ')} (one line per user: user item item ..., source ids)`,
  );
  return 0;
}

/** `advrec datasets download <name>`. */
export async function downloadCommand(
  name: string,
  flags: {
    dir?: string;
    mirror?: string;
    sha256?: string[];
    skipChecksum?: boolean;
    force?: boolean;
    timeout?: number;
    maxBytes?: number;
  },
  context: CommandContext,
): Promise<number> {
  const entry = datasetEntry(name, 'name');
  if (flags.timeout !== undefined && !(flags.timeout > 0))
    throw new ConfigError([{ path: '--timeout', message: `must be > 0, got ${flags.timeout}` }]);
  const pinned: Record<string, string> = {};
  for (const pair of flags.sha256 ?? []) {
    const eq = pair.indexOf('=');
    if (eq > 0) pinned[pair.slice(0, eq)] = pair.slice(eq + 1);
    else if (entry.files.length === 1)
      pinned[new URL(entry.files[0]!.url).pathname.split('/').at(-1)!] = pair;
  }
  const directory = resolve(flags.dir ?? dataDirectory());
  assertFolderPath(directory, flags.dir !== undefined ? '--dir' : 'ADVREC_DATA_DIR');
  const bars = downloadBars(context);
  const result = await downloadDataset(entry, {
    directory,
    ...(flags.mirror ? { mirror: flags.mirror } : {}),
    sha256: pinned,
    skipChecksum: flags.skipChecksum ?? false,
    force: flags.force ?? false,
    ...(flags.timeout !== undefined ? { timeoutSeconds: flags.timeout } : {}),
    ...(flags.maxBytes !== undefined ? { maxBytes: flags.maxBytes } : {}),
    onProgress: bars.onProgress,
  });
  bars.finish();
  emit(context, result, () =>
    [
      ...result.files.map(
        (f) =>
          `${f.url}: ${f.bytes} bytes, sha256 ${f.sha256} ${
            !f.verified
              ? '(NOT verified: pin it with --sha256)'
              : f.verifiedThrough
                ? `(verified through ${f.verifiedThrough.join(', ')}; the archive itself is not the publisher's)`
                : '(verified)'
          }`,
      ),
      `extracted ${result.extracted.length} files into ${result.folder}`,
      datasetLayoutIn(entry, result.folder) !== null
        ? `use it with: advrec train --data ${entry.name}`
        : '',
    ]
      .filter((l) => l !== '')
      .join('\n'),
  );
  return 0;
}
