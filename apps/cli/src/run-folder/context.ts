import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, removeStaleTemporaries } from '@advrec/data';
import { LOCK_FILE, lockRunFolder } from './lock.js';
import type { ReleaseLock } from './lock.js';
import type { Progress } from '../progress.js';
import { describe } from '@advrec/data';
import type { DatasetDescription } from '@advrec/data';
import type { ResolvedRunConfig } from '../config.js';
import type { LoadDataOptions, LoadedData } from '../catalog/load.js';
import { toJson, writeText } from './runs.js';

/** What every command gets: output streams, progress, the global flags. */
export interface CommandContext {
  /** Results (tables, or one JSON document with `--json`). */
  readonly stdout: NodeJS.WritableStream;
  /** Progress and logs. */
  readonly progress: Progress;
  /** `--json`: print one machine-readable JSON document on stdout and nothing else there. */
  readonly json: boolean;
  /** Aborted on the first Ctrl-C: training stops after the current epoch and saves. */
  readonly signal: AbortSignal;
}

/**
 * {@link loadData} options that report a first-use download of a named data set on the
 * command's progress output (a line saying what and from where, then a progress bar).
 */
export function dataLoading(context: CommandContext): LoadDataOptions {
  return {
    onDownload: (message) => context.progress.log(message),
    onProgress: downloadBars(context).onProgress,
  };
}

/**
 * One progress bar per downloaded file (KiB), finished when the file is complete;
 * `finish` ends any still open (a file of unknown size).
 */
export function downloadBars(context: CommandContext): {
  onProgress: (url: string, received: number, total: number | null) => void;
  finish: () => void;
} {
  const open = new Map<string, ReturnType<Progress['bar']>>();
  const done = new Set<string>();
  return {
    onProgress: (url, received, total) => {
      if (done.has(url)) return;
      let bar = open.get(url);
      if (!bar) {
        bar = context.progress.bar(
          `downloading ${url.split('/').at(-1)} (KiB)`,
          total ? Math.ceil(total / 1024) : 0,
        );
        open.set(url, bar);
      }
      bar.update(Math.floor(received / 1024));
      if (total !== null && received >= total) {
        bar.finish();
        open.delete(url);
        done.add(url);
      }
    },
    finish: () => {
      for (const bar of open.values()) bar.finish();
      open.clear();
    },
  };
}

/** Prints a command's result: the JSON document with `--json`, else the human text. */
export function emit(context: CommandContext, result: unknown, human: () => string): void {
  context.stdout.write(context.json ? toJson(result) : `${human()}\n`);
}

/** `20261129-031502-123`: a time stamp for folder and result-file names. */
export function timeStamp(date = new Date()): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace('T', '-')
    .replace('.', '-')
    .replace('Z', '');
}

/** A new run folder: `--out`, else `runs/<kind>-<date>-<time>`. */
export async function runFolder(out: string | undefined, kind: string): Promise<string> {
  const folder = resolve(out ?? join('runs', `${kind}-${timeStamp()}`));
  try {
    await mkdir(folder, { recursive: true });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'EEXIST' || code === 'ENOTDIR')
      throw new ConfigError([{ path: '--out', message: `${folder} is a file, not a folder` }]);
    throw error;
  }
  return folder;
}

/**
 * Creates (or reuses) a run folder, locks it for this process, refuses it when it holds
 * anything but a run of the same `config` (unless `force`), makes `checkpoints/` and removes
 * what a killed write left. `release()` the lock when the command ends.
 */
export async function claimRunFolder(
  out: string | undefined,
  kind: string,
  config: unknown,
  progress: Progress,
  options: { force?: boolean } = {},
): Promise<{ folder: string; release: ReleaseLock }> {
  const folder = await runFolder(out, kind);
  const release = await lockRunFolder(folder);
  try {
    await checkRunFolder(folder, config, options.force ?? false);
  } catch (error) {
    await release();
    throw error;
  }
  await mkdir(join(folder, 'checkpoints'), { recursive: true });
  progress.log(`run folder: ${folder}`);
  // Temporary files of a run that was killed mid-write (the lock says none is running here).
  for (const dir of [folder, join(folder, 'checkpoints')])
    for (const name of await removeStaleTemporaries(dir))
      progress.log(`removed ${join(dir, name)} (left by a killed write)`);
  return { folder, release };
}

/**
 * Refuses a run folder that holds anything but an advrec run of the same config (its files
 * would be overwritten or mixed with this run's), unless `force`.
 */
async function checkRunFolder(folder: string, config: unknown, force: boolean): Promise<void> {
  const entries = (await readdir(folder)).filter((e) => e !== LOCK_FILE);
  if (entries.length === 0 || force) return;
  let previous: string | null = null;
  try {
    previous = await readFile(join(folder, 'config.json'), 'utf8');
  } catch {
    previous = null;
  }
  const same = previous !== null && previous.trim() === toJson(config).trim();
  if (!same)
    throw new ConfigError([
      {
        path: '--out',
        message: `${folder} is not empty and ${previous === null ? 'is not an advrec run folder' : 'holds a run of another config'} (${entries.slice(0, 4).join(', ')}${entries.length > 4 ? ', ...' : ''}); choose another --out, or pass --force to write into it`,
      },
    ]);
}

export { lockRunFolder } from './lock.js';
export type { ReleaseLock } from './lock.js';

/** A result file of one command in a run folder, never replacing an earlier one. */
export async function resultFile(folder: string, name: string): Promise<string> {
  const base = `${name}-${timeStamp()}`;
  for (let k = 0; ; k++) {
    const file = join(folder, `${base}${k ? `-${k}` : ''}.json`);
    const exists = await stat(file).then(
      () => true,
      () => false,
    );
    if (!exists) return file;
  }
}

/**
 * Creates a run folder (and its `checkpoints/`), locks it for this command, refuses one that
 * holds anything but a run of the same config (unless `force`), says where it is and what
 * data it holds, and records the run's inputs: the resolved config and the data set
 * (fingerprint, files read, statistics). Call it once the config, data and model have been
 * checked, and `release()` the lock when the command ends.
 */
export async function openRunFolder(
  out: string | undefined,
  kind: string,
  config: ResolvedRunConfig,
  data: LoadedData,
  progress: Progress,
  options: { force?: boolean } = {},
): Promise<{ folder: string; description: DatasetDescription; release: ReleaseLock }> {
  const { folder, release } = await claimRunFolder(out, kind, config, progress, options);
  const description = describe(data.dataset);
  const features = data.itemFeatures
    ? `, features ${data.itemFeatures.dimension}-d (${data.itemFeatures.missingItems.length} items without)`
    : '';
  progress.log(
    `data: ${description.name}: ${description.users} users, ${description.items} items, ${description.train.interactions} training interactions${features} (fingerprint ${data.fingerprint.slice(0, 12)})`,
  );
  await writeText(join(folder, 'config.json'), toJson(config));
  await writeText(
    join(folder, 'dataset.json'),
    toJson({ fingerprint: data.fingerprint, files: data.files, description }),
  );
  return { folder, description, release };
}

/** A fixed-width text table: text left-aligned, numbers right-aligned. */
export function textTable(
  columns: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const cells = rows.map((row) =>
    row.map((v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v)),
  );
  const numeric = columns.map(
    (_, k) =>
      rows.length > 0 &&
      rows.every(
        (r) => typeof r[k] === 'number' || /^[+-]?[\d.]+(%|e[+-]?\d+)?$/.test(String(r[k])),
      ),
  );
  const widths = columns.map((c, k) => Math.max(c.length, ...cells.map((r) => r[k]?.length ?? 0)));
  const line = (values: readonly string[]): string =>
    values
      .map((v, k) => (numeric[k] ? v.padStart(widths[k]!) : v.padEnd(widths[k]!)))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** `+5.3%`. */
/**
 * A p-value as people write it: two significant digits down to 0.001 (`0.53`, `0.012`),
 * then `3.1e-5`, and `< 1e-300` for an underflow (not `5.3e-1`).
 */
export function pValue(p: number): string {
  if (!Number.isFinite(p)) return 'n/a';
  if (p === 0) return '< 1e-300';
  if (p >= 0.001) return String(Number(p.toPrecision(2)));
  return p.toExponential(1);
}

export function percent(x: number): string {
  return Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%` : 'n/a';
}
