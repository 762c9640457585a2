/** What a benchmark gets from the runner. */
export interface BenchContext {
  /** `../shared/data` beside the repository (or `ADVREC_SHARED_DATA`). */
  readonly sharedData: string;
  /** Progress output. */
  readonly log: (line: string) => void;
}

/** A benchmark module: `bench/src/<name>.ts`. */
export interface BenchModule {
  run(context: BenchContext): Promise<Record<string, unknown>>;
}

export { sharedDataDir } from '@advrec/testing';

/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
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
