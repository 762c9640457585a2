import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DataFormatError, writeFileAtomic } from '@advrec/data';
import type { JsonObject } from './model.js';
import { isSafetensors, parseSafetensors, serializeSafetensors } from './safetensors.js';
import { admitUnverified } from './checkpoint-verify.js';
import type { ReadCheckpointOptions } from './checkpoint-verify.js';
export type { ReadCheckpointOptions } from './checkpoint-verify.js';
import { createTable } from './tables.js';
import type { ParameterTable, TableSide } from './tables.js';

/** Written since 0.x with the engine seam: the file ends with the SHA-256 of what precedes it. */
const MAGIC = 'ADVRECK2';
/** Earlier checkpoints (no checksum): read only when unverified checkpoints are allowed. */
const MAGIC_V1 = 'ADVRECK1';
const DIGEST_BYTES = 32;

export type { Checkpoint, CheckpointedModel } from './checkpoint-types.js';
import type { Checkpoint, CheckpointedModel } from './checkpoint-types.js';

interface TableHeader {
  name: string;
  side: TableSide;
  rows: number;
  dimension: number;
  extra: boolean;
}

/**
 * Serialises a model (and extras) to bytes: `ADVRECK2`, a little-endian uint32 header
 * length, the JSON header (name, spec version, config, table shapes, metadata), zero
 * padding to 4 bytes, every table's float32 values, little-endian, in header order, and the
 * SHA-256 of all of that (32 bytes), checked on load: a flipped bit anywhere is refused.
 */
export function serializeCheckpoint(
  model: CheckpointedModel,
  extraTables: readonly ParameterTable[] = [],
  metadata: JsonObject = {},
): Uint8Array[] {
  const tables: TableHeader[] = [
    ...model.tables.map((t) => ({
      name: t.name,
      side: t.side,
      rows: t.rows,
      dimension: t.dimension,
      extra: false,
    })),
    ...extraTables.map((t) => ({
      name: t.name,
      side: t.side,
      rows: t.rows,
      dimension: t.dimension,
      extra: true,
    })),
  ];
  const header = Buffer.from(
    JSON.stringify({
      modelName: model.modelName,
      specificationVersion: model.specificationVersion,
      config: model.config,
      numUsers: model.numUsers,
      numItems: model.numItems,
      tables,
      metadata,
    }),
    'utf8',
  );
  const padding = (4 - ((MAGIC.length + 4 + header.length) % 4)) % 4;
  const prefix = Buffer.alloc(MAGIC.length + 4 + header.length + padding);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(header.length, MAGIC.length);
  header.copy(prefix, MAGIC.length + 4);
  const chunks: Uint8Array[] = [prefix];
  const hash = createHash('sha256').update(prefix);
  for (const table of [...model.tables, ...extraTables]) {
    // Tables are float32 in platform order; every supported platform is little-endian.
    const bytes = new Uint8Array(
      table.values.buffer,
      table.values.byteOffset,
      table.values.byteLength,
    ).slice();
    hash.update(bytes);
    chunks.push(bytes);
  }
  chunks.push(new Uint8Array(hash.digest()));
  return chunks;
}

/**
 * Writes a checkpoint atomically (a temporary file renamed over the target), so a crash
 * or Ctrl-C never leaves a partial checkpoint. A file name ending in `.safetensors` gets the
 * safetensors layout (readable from Python; no checksum), any other the advrec format.
 */
export async function writeCheckpoint(
  file: string,
  model: CheckpointedModel,
  extraTables: readonly ParameterTable[] = [],
  metadata: JsonObject = {},
): Promise<void> {
  const chunks = file.endsWith('.safetensors')
    ? serializeSafetensors(model, extraTables, metadata)
    : serializeCheckpoint(model, extraTables, metadata);
  await writeFileAtomic(file, () => chunks);
}

/** Reads a checkpoint written by {@link writeCheckpoint} (either format); tables land on SharedArrayBuffers. */
export async function readCheckpoint(
  file: string,
  options: ReadCheckpointOptions = {},
): Promise<Checkpoint> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (cause) {
    throw new DataFormatError({ file }, 'a readable advrec checkpoint', (cause as Error).message, {
      cause,
    });
  }
  return parseCheckpoint(bytes, file, options);
}

/** Parses checkpoint bytes; `file` names the source in errors. */
export function parseCheckpoint(
  bytes: Uint8Array,
  file = '<checkpoint>',
  options: ReadCheckpointOptions = {},
): Checkpoint {
  if (isSafetensors(bytes)) return parseSafetensors(bytes, file, options);
  const whole = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = whole.length >= MAGIC.length ? whole.toString('latin1', 0, MAGIC.length) : '';
  if (whole.length < MAGIC.length + 4 || (magic !== MAGIC && magic !== MAGIC_V1))
    throw new DataFormatError(
      { file },
      `an advrec checkpoint starting with ${MAGIC} (or ${MAGIC_V1})`,
      whole.toString('latin1', 0, 8),
    );
  let buffer = whole;
  if (magic === MAGIC) {
    // Verify the SHA-256 of everything before the last 32 bytes first: a flipped bit in the
    // header or a table, or a truncated file, is refused before anything is parsed.
    const end = whole.length - DIGEST_BYTES;
    const digest =
      end > MAGIC.length + 4 ? createHash('sha256').update(whole.subarray(0, end)).digest() : null;
    if (!digest || !digest.equals(whole.subarray(end)))
      throw new DataFormatError(
        { file },
        'a checkpoint whose SHA-256 matches its content',
        'a mismatch: the file is corrupt or truncated (restore it from a copy, or retrain)',
      );
    buffer = whole.subarray(0, end);
  } else admitUnverified(file, `an ${MAGIC_V1} checkpoint`, options);
  const headerLength = buffer.readUInt32LE(MAGIC.length);
  const headerEnd = MAGIC.length + 4 + headerLength;
  if (headerEnd > buffer.length)
    throw new DataFormatError(
      { file },
      `a ${headerLength}-byte header`,
      `${buffer.length} bytes in all`,
    );
  let header: {
    modelName: string;
    specificationVersion: string;
    config: JsonObject;
    numUsers: number;
    numItems: number;
    tables: TableHeader[];
    metadata: JsonObject;
  };
  try {
    header = JSON.parse(buffer.toString('utf8', MAGIC.length + 4, headerEnd)) as typeof header;
  } catch (cause) {
    throw new DataFormatError({ file }, 'a JSON checkpoint header', (cause as Error).message, {
      cause,
    });
  }
  if (typeof header.modelName !== 'string' || !Array.isArray(header.tables))
    throw new DataFormatError(
      { file },
      'a header with modelName and tables',
      JSON.stringify(header).slice(0, 80),
    );
  let offset = headerEnd + ((4 - (headerEnd % 4)) % 4);
  const tables: ParameterTable[] = [];
  const extraTables: ParameterTable[] = [];
  for (const t of header.tables) {
    const count = t.rows * t.dimension;
    if (!Number.isInteger(count) || count < 0 || offset + 4 * count > buffer.length)
      throw new DataFormatError(
        { file },
        `table ${t.name} of ${t.rows} x ${t.dimension} float32 values`,
        `${buffer.length - offset} bytes left`,
      );
    const table = createTable(t.name, t.side, t.rows, t.dimension);
    new Uint8Array(table.values.buffer).set(buffer.subarray(offset, offset + 4 * count));
    offset += 4 * count;
    for (let k = 0; k < table.values.length; k++) {
      if (!Number.isFinite(table.values[k]))
        throw new DataFormatError(
          { file },
          `finite values in table ${t.name}`,
          `${table.values[k]} at row ${Math.floor(k / t.dimension)}`,
        );
    }
    (t.extra ? extraTables : tables).push(table);
  }
  if (offset !== buffer.length)
    throw new DataFormatError(
      { file },
      `${offset} bytes`,
      `${buffer.length} bytes (trailing data)`,
    );
  return {
    model: {
      modelName: header.modelName,
      specificationVersion: header.specificationVersion,
      config: header.config,
      numUsers: header.numUsers,
      numItems: header.numItems,
      tables,
    },
    extraTables,
    metadata: header.metadata ?? {},
  };
}
