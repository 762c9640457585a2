import { totalmem } from 'node:os';
import { ConfigError } from './errors.js';

/** The longest typed array V8 allocates on 64-bit Node (2^32 - 1 elements). @internal */
const MAX_TYPED_ARRAY_ELEMENTS = 2 ** 32 - 1;

/** Bytes as `1.5 GiB` / `12.0 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 40) return `${(bytes / 2 ** 40).toFixed(1)} TiB`;
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Checks that an array of `elements` values of `bytesPerElement` bytes can be allocated on
 * this machine (at most its total memory, and within V8's typed-array limit) before trying,
 * so that a size typed by mistake (an embedding size of 1e9, a cutoff of 1e9) is a
 * {@link ConfigError} naming the field instead of a `RangeError` after hours of work.
 *
 * @param path the config field (or option) the size comes from, e.g. `model.embeddingSize`.
 * @param what what the array is, e.g. `userEmbeddings (6,040 x 1,000,000,000)`.
 */
export function checkAllocation(
  path: string,
  what: string,
  elements: number,
  bytesPerElement: number,
): void {
  const bytes = elements * bytesPerElement;
  const limit = Math.min(totalmem(), MAX_TYPED_ARRAY_ELEMENTS * bytesPerElement);
  if (!Number.isFinite(bytes) || elements > MAX_TYPED_ARRAY_ELEMENTS || bytes > limit) {
    throw new ConfigError([
      {
        path,
        message: `${what} needs ${formatBytes(bytes)}, more than this machine can hold (${formatBytes(totalmem())} of memory, at most ${MAX_TYPED_ARRAY_ELEMENTS.toLocaleString('en-US')} values in one array)`,
      },
    ]);
  }
}
