import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Progress } from './progress.js';
import { describe } from '@advrec/data';
import type { DatasetDescription } from '@advrec/data';
import type { ResolvedRunConfig } from './config.js';
import type { LoadedData } from './datasets.js';
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

/** Prints a command's result: the JSON document with `--json`, else the human text. */
export function emit(context: CommandContext, result: unknown, human: () => string): void {
  context.stdout.write(context.json ? toJson(result) : `${human()}\n`);
}

/** A new run folder: `--out`, else `runs/<kind>-<date>-<time>`. */
export async function runFolder(out: string | undefined, kind: string): Promise<string> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const folder = resolve(out ?? join('runs', `${kind}-${stamp}`));
  await mkdir(folder, { recursive: true });
  return folder;
}

/**
 * Creates a run folder (and its `checkpoints/`), says where it is and what data it holds, and
 * records the run's inputs: the resolved config and the data set (fingerprint, files read,
 * statistics). Call it once the config, data and model have been checked.
 */
export async function openRunFolder(
  out: string | undefined,
  kind: string,
  config: ResolvedRunConfig,
  data: LoadedData,
  progress: Progress,
): Promise<{ folder: string; description: DatasetDescription }> {
  const folder = await runFolder(out, kind);
  await mkdir(join(folder, 'checkpoints'), { recursive: true });
  progress.log(`run folder: ${folder}`);
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
  return { folder, description };
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
export function percent(x: number): string {
  return Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%` : 'n/a';
}
