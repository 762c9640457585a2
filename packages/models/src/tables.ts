import { checkAllocation, ConfigError, Random } from '@advrec/data';

/** Which id space indexes the rows of a surface (and of a row table). */
export type Side = 'user' | 'item';

/**
 * What the rows of a table are: users, items, or `dense` (a small matrix such as the
 * feature projection E, updated whole at every batch).
 */
export type TableSide = Side | 'dense';

/**
 * A named parameter table: `rows x dimension` float32 values, row-major. Its buffer is a
 * `SharedArrayBuffer` by default, so worker threads train it in place; it is the single
 * source of truth for the parameter (checkpoints write it as is).
 */
export interface ParameterTable {
  /** Name in the papers' vocabulary, e.g. `userEmbeddings` (P) or `itemEmbeddings` (Q). */
  readonly name: string;
  /** Whether row `r` belongs to user `r`, item `r`, or is a row of a dense matrix. */
  readonly side: TableSide;
  readonly rows: number;
  readonly dimension: number;
  /** `rows * dimension` values, row-major. */
  readonly values: Float32Array;
}

/**
 * Allocates a zero table on a `SharedArrayBuffer` (or a plain buffer when `shared` is false).
 * A table too large for this machine is a `ConfigError` on `sizeField`: the model option that
 * sized it (`embeddingSize` by default; a sequential model names `dimension` or `maxLength`).
 */
export function createTable(
  name: string,
  side: TableSide,
  rows: number,
  dimension: number,
  shared = true,
  sizeField = 'embeddingSize',
): ParameterTable {
  if (!Number.isInteger(rows) || rows < 0)
    throw new ConfigError([
      { path: `${name}.rows`, message: `must be a non-negative integer, got ${rows}` },
    ]);
  if (!Number.isInteger(dimension) || dimension < 1)
    throw new ConfigError([
      { path: `${name}.dimension`, message: `must be a positive integer, got ${dimension}` },
    ]);
  // A size typed by mistake is a ConfigError on the option that sized it, not a RangeError.
  checkAllocation(
    sizeField,
    `table ${name} (${rows.toLocaleString('en-US')} x ${dimension.toLocaleString('en-US')} float32)`,
    rows * dimension,
    4,
  );
  const bytes = rows * dimension * 4;
  const buffer = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  return { name, side, rows, dimension, values: new Float32Array(buffer) };
}

/**
 * Fills a table with `N(mean, std^2)` draws truncated at two standard deviations (redrawn
 * beyond), as `tf.truncated_normal` in the APR and AMR code (std 0.01). Seeded: the
 * stream is `Random.stream(seed, streamKey)`.
 */
export function initializeTruncatedNormal(
  table: ParameterTable,
  seed: number,
  streamKey: number,
  std: number,
  mean = 0,
): void {
  const random = Random.stream(seed, streamKey);
  const values = table.values;
  for (let k = 0; k < values.length; k++) {
    let z = random.nextGaussian();
    while (z < -2 || z > 2) z = random.nextGaussian();
    values[k] = mean + std * z;
  }
}

/** Copies a table into a fresh one (shared when the original is). */
export function cloneTable(table: ParameterTable): ParameterTable {
  const copy = createTable(
    table.name,
    table.side,
    table.rows,
    table.dimension,
    table.values.buffer instanceof SharedArrayBuffer,
  );
  copy.values.set(table.values);
  return copy;
}

/**
 * Fills a table with Glorot (Xavier) uniform draws, `U(-a, a)` with
 * `a = sqrt(6 / (fanIn + fanOut))`, as TensorFlow's `glorot_uniform` (the SASRec code's
 * initialiser). Seeded: the stream is `Random.stream(seed, streamKey)`.
 */
export function initializeGlorotUniform(
  table: ParameterTable,
  seed: number,
  streamKey: number,
  fanIn: number = table.rows,
  fanOut: number = table.dimension,
): void {
  const random = Random.stream(seed, streamKey);
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const values = table.values;
  for (let k = 0; k < values.length; k++) values[k] = (2 * random.nextFloat() - 1) * limit;
}
