/**
 * Checkpoints in the safetensors layout (https://huggingface.co/docs/safetensors), so that
 * Python (`safetensors`, or numpy with a few lines) reads a model trained here:
 *
 * - 8 bytes: the header's length N, unsigned little-endian 64-bit;
 * - N bytes: a UTF-8 JSON object, padded with spaces to a multiple of 8 bytes: per tensor
 *   `{ "dtype": "F32", "shape": [rows, dimension], "data_offsets": [begin, end] }` (offsets
 *   into the data that follows, contiguous, in header order), and `__metadata__`, a map of
 *   strings: `format` = `advrec`, and the advrec header (model name, specification version,
 *   config, sizes, table sides, which tables are extras such as optimiser state, and the
 *   checkpoint's metadata) as JSON strings under `advrec.*` keys;
 * - the tensors' float32 values, little-endian, row-major.
 *
 * safetensors itself carries no checksum; advrec adds one: `__metadata__["advrec.sha256"]`, the
 * SHA-256 of the header as written without that key followed by every tensor's bytes, checked
 * on load (a file without it is read only when unverified checkpoints are allowed).
 * {@link readCheckpoint} reads both formats.
 */
import { createHash } from 'node:crypto';
import { DataFormatError } from '@advrec/data';
import type { Checkpoint, CheckpointedModel } from './checkpoint-types.js';
import { admitUnverified } from './checkpoint-verify.js';
import type { ReadCheckpointOptions } from './checkpoint-verify.js';
import type { JsonObject } from './model.js';
import { createTable } from './tables.js';
import type { ParameterTable, TableSide } from './tables.js';

/** The `__metadata__` value of `format` in advrec's safetensors files. */
export const SAFETENSORS_FORMAT = 'advrec';

/** The `__metadata__` key of advrec's checksum in its safetensors files. */
const DIGEST_KEY = 'advrec.sha256';

interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Serialises a model (and extras) in the safetensors layout (see the module comment). */
export function serializeSafetensors(
  model: CheckpointedModel,
  extraTables: readonly ParameterTable[] = [],
  metadata: JsonObject = {},
): Uint8Array[] {
  const all = [
    ...model.tables.map((table) => ({ table, extra: false })),
    ...extraTables.map((table) => ({ table, extra: true })),
  ];
  const names = new Set<string>();
  for (const { table } of all) {
    if (names.has(table.name) || table.name === '__metadata__')
      throw new RangeError(`two tables are named ${table.name}: safetensors needs unique names`);
    names.add(table.name);
  }
  const header: Record<string, TensorEntry | Record<string, string>> = {
    __metadata__: {
      format: SAFETENSORS_FORMAT,
      'advrec.modelName': model.modelName,
      'advrec.specificationVersion': model.specificationVersion,
      'advrec.config': JSON.stringify(model.config),
      'advrec.numUsers': String(model.numUsers),
      'advrec.numItems': String(model.numItems),
      'advrec.tables': JSON.stringify(
        all.map(({ table, extra }) => ({ name: table.name, side: table.side, extra })),
      ),
      'advrec.metadata': JSON.stringify(metadata),
    },
  };
  let offset = 0;
  for (const { table } of all) {
    const bytes = table.values.byteLength;
    header[table.name] = {
      dtype: 'F32',
      shape: [table.rows, table.dimension],
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  // The checksum covers the header as written without it, then every tensor's bytes.
  const digest = createHash('sha256').update(JSON.stringify(header));
  for (const { table } of all)
    digest.update(
      new Uint8Array(table.values.buffer, table.values.byteOffset, table.values.byteLength),
    );
  (header['__metadata__'] as Record<string, string>)[DIGEST_KEY] = digest.digest('hex');
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const prefix = Buffer.alloc(8 + Buffer.byteLength(json));
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  prefix.write(json, 8, 'utf8');
  // Tables are float32 in platform order; every supported platform is little-endian.
  return [
    prefix,
    ...all.map(({ table }) =>
      new Uint8Array(table.values.buffer, table.values.byteOffset, table.values.byteLength).slice(),
    ),
  ];
}

/** Whether `bytes` start like a safetensors file (a header length, then a JSON object). */
export function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const length = Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0);
  return length >= 2n && length <= BigInt(bytes.length - 8) && bytes[8] === 0x7b; // '{'
}

/** Parses an advrec checkpoint in the safetensors layout; `file` names the source in errors. */
export function parseSafetensors(
  bytes: Uint8Array,
  file = '<checkpoint>',
  options: ReadCheckpointOptions = {},
): Checkpoint {
  const whole = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (expected: string, found: string): never => {
    throw new DataFormatError({ file }, expected, found);
  };
  if (!isSafetensors(whole)) fail('a safetensors file (header length, then JSON)', 'other bytes');
  const headerLength = Number(whole.readBigUInt64LE(0));
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(whole.toString('utf8', 8, 8 + headerLength)) as Record<string, unknown>;
  } catch (cause) {
    throw new DataFormatError({ file }, 'a JSON safetensors header', (cause as Error).message, {
      cause,
    });
  }
  const meta = (header['__metadata__'] ?? {}) as Record<string, string>;
  if (meta['format'] !== SAFETENSORS_FORMAT)
    fail(
      `a safetensors file written by advrec (__metadata__.format = "${SAFETENSORS_FORMAT}")`,
      `format ${JSON.stringify(meta['format'] ?? null)}`,
    );
  const data = whole.subarray(8 + headerLength);
  const recorded = meta[DIGEST_KEY];
  if (recorded === undefined) admitUnverified(file, 'a safetensors file', options);
  else {
    delete meta[DIGEST_KEY];
    const actual = createHash('sha256').update(JSON.stringify(header)).update(data).digest('hex');
    if (actual !== recorded)
      fail(
        `a safetensors file whose SHA-256 (${DIGEST_KEY}) matches its content`,
        'a mismatch: the file is corrupt or was edited (restore it from a copy, or export it again)',
      );
  }
  const json = <T>(key: string): T => {
    try {
      return JSON.parse(meta[key] ?? 'null') as T;
    } catch {
      return fail(`JSON in __metadata__["${key}"]`, String(meta[key]).slice(0, 60));
    }
  };
  const order = json<{ name: string; side: TableSide; extra: boolean }[] | null>('advrec.tables');
  if (!Array.isArray(order)) fail('__metadata__["advrec.tables"]', 'none');
  const tables: ParameterTable[] = [];
  const extraTables: ParameterTable[] = [];
  let expectedBegin = 0;
  for (const { name, side, extra } of order!) {
    const entry = header[name] as TensorEntry | undefined;
    if (!entry || entry.dtype !== 'F32' || !Array.isArray(entry.shape) || entry.shape.length !== 2)
      fail(
        `tensor ${name} of dtype F32 and shape [rows, dimension]`,
        JSON.stringify(entry ?? null),
      );
    const [rows, dimension] = entry!.shape as [number, number];
    const [begin, end] = entry!.data_offsets;
    if (begin !== expectedBegin || end - begin !== rows * dimension * 4 || end > data.length)
      fail(
        `tensor ${name}: ${rows * dimension * 4} bytes at offset ${expectedBegin}`,
        `offsets [${begin}, ${end}] of ${data.length} data bytes`,
      );
    const table = createTable(name, side, rows, dimension);
    new Uint8Array(table.values.buffer).set(data.subarray(begin, end));
    for (let k = 0; k < table.values.length; k++)
      if (!Number.isFinite(table.values[k]))
        fail(
          `finite values in table ${name}`,
          `${table.values[k]} at row ${Math.floor(k / dimension)}`,
        );
    (extra ? extraTables : tables).push(table);
    expectedBegin = end;
  }
  if (expectedBegin !== data.length)
    fail(`${expectedBegin} data bytes`, `${data.length} (trailing data)`);
  return {
    model: {
      modelName: meta['advrec.modelName'] ?? '',
      specificationVersion: meta['advrec.specificationVersion'] ?? '',
      config: json<JsonObject>('advrec.config') ?? {},
      numUsers: Number(meta['advrec.numUsers']),
      numItems: Number(meta['advrec.numItems']),
      tables,
    },
    extraTables,
    metadata: json<JsonObject>('advrec.metadata') ?? {},
  };
}
