/** Option parsers shared by the commands: each error names the flag and the value. */
import { InvalidArgumentError } from 'commander';

/** Repeatable option: collects every value. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** An integer option, at least `min` when given (`--threads 0`, `--limit -5` are refused). */
export function integer(flag: string, min?: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n))
      throw new InvalidArgumentError(`${flag} must be an integer, got "${value}"`);
    if (min !== undefined && n < min)
      throw new InvalidArgumentError(`${flag} must be an integer >= ${min}, got "${value}"`);
    return n;
  };
}

/** A finite number option. */
export function decimal(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n))
      throw new InvalidArgumentError(`${flag} must be a number, got "${value}"`);
    return n;
  };
}

/** A comma-separated list of numbers. */
export function numbers(flag: string): (value: string) => number[] {
  return (value) =>
    value.split(',').map((part) => {
      const n = Number(part.trim());
      if (part.trim() === '' || !Number.isFinite(n))
        throw new InvalidArgumentError(
          `${flag} must be a comma-separated list of numbers, got "${value}"`,
        );
      return n;
    });
}

/** A comma-separated list of words. */
export const words = (value: string): string[] =>
  value
    .split(',')
    .map((w) => w.trim())
    .filter((w) => w !== '');

/** Seconds without a byte from the server before a download is given up (default). */
export const DOWNLOAD_IDLE_TIMEOUT_SECONDS = 60;
