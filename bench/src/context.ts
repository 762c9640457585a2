import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
/** What a benchmark gets from the runner. */
export interface BenchContext {
  /** `../shared/data` beside the repository (or `ADVREC_SHARED_DATA`). */
  readonly sharedData: string;
  /** Progress output. */
  readonly log: (line: string) => void;
  /** The benchmark's options as given on the command line (see {@link parseBenchOptions}). */
  readonly options: Readonly<Record<string, BenchOptionValue>>;
}

/** A benchmark module: `bench/src/perf/<name>.ts` or `bench/src/quality/<name>.ts`. */
export interface BenchModule {
  readonly about: BenchAbout;
  readonly options?: BenchOptionSpec;
  run(context: BenchContext): Promise<Record<string, unknown>>;
}

export { sharedDataDir } from '@advrec/testing';

/** The repository root. */
export const REPOSITORY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The built `advrec` binary the CLI benchmarks run. */
export const ADVREC_BIN = join(REPOSITORY_ROOT, 'apps', 'cli', 'dist', 'bin.js');

/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Samples the process's resident memory every 10 ms from a worker thread (it keeps
 * sampling while the main thread is busy in native code) until `stop()`, which returns the
 * peak in MiB: the figure each benchmark records beside its speed figures. Worker threads'
 * memory is included (one process); child processes' is not.
 */
export async function trackPeakMemory(): Promise<{ stop(): Promise<number> }> {
  const { Worker } = await import('node:worker_threads');
  const shared = new Int32Array(new SharedArrayBuffer(8));
  const code = `
    const { workerData } = require('node:worker_threads');
    const cell = new Int32Array(workerData);
    const tick = () => {
      const mib = Math.ceil(process.memoryUsage.rss() / 1048576);
      if (mib > Atomics.load(cell, 0)) Atomics.store(cell, 0, mib);
      if (Atomics.load(cell, 1) === 0) setTimeout(tick, 10);
    };
    tick();`;
  const worker = new Worker(code, { eval: true, workerData: shared.buffer });
  worker.unref();
  shared[0] = Math.ceil(process.memoryUsage.rss() / 1048576);
  return {
    async stop(): Promise<number> {
      Atomics.store(shared, 1, 1);
      await worker.terminate();
      return Math.max(Atomics.load(shared, 0), Math.ceil(process.memoryUsage.rss() / 1048576));
    },
  };
}

/** Seconds since `start` (a `performance.now()` value). */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}

/** A results file as `main.ts` writes it. */
export interface PreviousResults {
  readonly date?: string;
  readonly commit?: string;
  readonly results?: Record<string, unknown>;
}

/** The committed results of a benchmark (`bench/results/<name>.json`), or null. */
export async function previousResults(name: string): Promise<PreviousResults | null> {
  const { readFile } = await import('node:fs/promises');
  const { fileURLToPath } = await import('node:url');
  const file = fileURLToPath(new URL(`../results/${name}.json`, import.meta.url));
  try {
    return JSON.parse(await readFile(file, 'utf8')) as PreviousResults;
  } catch {
    return null;
  }
}

/** A section of a part not run this time, kept from the previous results and marked so. */
export function carriedOver(
  previous: PreviousResults | null,
  section: unknown,
): Record<string, unknown> {
  if (!previous || !section || typeof section !== 'object') return {};
  return {
    ...(section as Record<string, unknown>),
    carriedOver: { date: previous.date, commit: previous.commit },
  };
}

/** Which table of `pnpm bench` a benchmark belongs to. */
export type BenchKind = 'perf' | 'quality';

/** What a benchmark measures and the figures it writes: the bench README's table is made from it. */
export interface BenchAbout {
  readonly kind: BenchKind;
  readonly what: string;
  readonly figures: string;
}

/** The value of a benchmark option: the type of its default. */
export type BenchOptionValue = number | string | boolean | readonly number[] | readonly string[];

/** An option of a benchmark (`pnpm bench <name> --<option> <value>`). */
export interface BenchOption {
  readonly description: string;
  readonly default: BenchOptionValue;
  /** For a string or a list of strings: the values allowed. */
  readonly choices?: readonly string[];
}

/** A benchmark's options, by name. */
export type BenchOptionSpec = Readonly<Record<string, BenchOption>>;

type Widen<T> = T extends number
  ? number
  : T extends string
    ? string
    : T extends boolean
      ? boolean
      : T extends readonly number[]
        ? readonly number[]
        : readonly string[];

/** The parsed values of a spec, typed by their defaults. */
export type BenchOptionValues<S extends BenchOptionSpec> = {
  readonly [K in keyof S]: Widen<S[K]['default']>;
};

/**
 * Parses `--name value` / `--name=value` arguments against a benchmark's options: each value
 * takes the type of the option's default (a number, a comma-separated list, a boolean);
 * an unknown option, a bad number or a value outside the choices is an error naming it.
 */
export function parseBenchOptions<S extends BenchOptionSpec>(
  spec: S,
  args: readonly string[],
): BenchOptionValues<S> {
  const values: Record<string, BenchOptionValue> = Object.fromEntries(
    Object.entries(spec).map(([name, option]) => [name, option.default]),
  );
  const known = Object.keys(spec);
  for (let k = 0; k < args.length; k++) {
    const arg = args[k]!;
    if (!arg.startsWith('--'))
      throw new RangeError(`unexpected argument "${arg}" (options are --name value)`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const option = spec[name];
    if (!option)
      throw new RangeError(
        `unknown option --${name}; this benchmark takes ${known.map((n) => `--${n}`).join(', ') || 'none'}`,
      );
    let text: string;
    if (eq >= 0) text = arg.slice(eq + 1);
    else if (typeof option.default === 'boolean' && !(args[k + 1] ?? '').match(/^(true|false)$/))
      text = 'true';
    else if (k + 1 < args.length) text = args[++k]!;
    else throw new RangeError(`--${name} needs a value`);
    values[name] = parseValue(name, option, text);
  }
  return values as BenchOptionValues<S>;
}

function parseValue(name: string, option: BenchOption, text: string): BenchOptionValue {
  const number = (part: string): number => {
    const n = Number(part.trim());
    if (part.trim() === '' || !Number.isFinite(n))
      throw new RangeError(`--${name} must be a number, got "${part}"`);
    return n;
  };
  const word = (part: string): string => {
    const w = part.trim();
    if (option.choices && !option.choices.includes(w))
      throw new RangeError(`--${name}: "${w}" is not one of ${option.choices.join(', ')}`);
    return w;
  };
  const d = option.default;
  if (typeof d === 'number') return number(text);
  if (typeof d === 'boolean') {
    if (text !== 'true' && text !== 'false')
      throw new RangeError(`--${name} must be true or false, got "${text}"`);
    return text === 'true';
  }
  if (typeof d === 'string') return word(text);
  const parts = text.split(',').filter((p) => p.trim() !== '');
  return typeof d[0] === 'number' ||
    (d.length === 0 && parts.every((p) => Number.isFinite(Number(p))))
    ? parts.map(number)
    : parts.map(word);
}
