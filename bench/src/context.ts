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
