import { open } from 'node:fs/promises';
import { ConfigError, DataError, DataFormatError, IssueCollector } from './errors.js';
import type { IdMap } from './id-map.js';
import { assertReadableFile } from './lines.js';
import { checkAllocation } from './memory.js';
import { writeFileAtomic } from './write.js';

/** A dense row-major float32 matrix read from a file. */
export interface FeatureMatrix {
  readonly rows: number;
  readonly dimension: number;
  /** `rows x dimension`, row-major. */
  readonly data: Float32Array;
  /** Element type in the file. */
  readonly fileType: 'float32' | 'float16' | 'float64';
  readonly source: string;
}

/**
 * Item content features (e.g. CNN image features) aligned to dense item ids: row `i`
 * of `matrix` belongs to dense item `i`. Items without features have a zero row and
 * `hasFeatures[i] === 0`, and are listed in `missingItems`: nothing is silently imputed.
 */
export interface ItemFeatures {
  /** `numItems x dimension`, row-major. */
  readonly matrix: Float32Array;
  readonly numItems: number;
  readonly dimension: number;
  /** 1 when item `i` has a feature row, 0 when its row is a placeholder of zeros. */
  readonly hasFeatures: Uint8Array;
  /** Dense ids of the items without features, ascending. */
  readonly missingItems: Int32Array;
  /** File rows that belong to no item of the data set (ignored). */
  readonly unusedRows: number;
  readonly source: string;
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const RAW_MAGIC = 'AVRF';
const RAW_HEADER_BYTES = 16;

interface MatrixHeader {
  rows: number;
  dimension: number;
  dataOffset: number;
  elementBytes: 2 | 4 | 8;
  littleEndian: boolean;
  fileType: FeatureMatrix['fileType'];
}

/**
 * Reads a 2-D `.npy` matrix (NumPy format 1.0/2.0/3.0): float32, float16 or float64,
 * either byte order, C order. The data is streamed into one Float32Array.
 * @throws {@link DataFormatError} for a bad magic, header, dtype, Fortran order, a shape
 * that is not 2-D, a truncated file, or a non-finite value (naming its row).
 */
export async function readNpy(file: string): Promise<FeatureMatrix> {
  return readMatrix(file, parseNpyHeader);
}

/**
 * Reads the raw float32 layout: a 16-byte header (`AVRF`, uint32 version 1, uint32 rows,
 * uint32 dimension, little-endian) followed by `rows x dimension` little-endian float32.
 */
export async function readRawFeatures(file: string): Promise<FeatureMatrix> {
  return readMatrix(file, parseRawHeader);
}

/** Reads `.npy` or the raw layout, chosen by the file's magic bytes. */
export async function readFeatureMatrix(file: string): Promise<FeatureMatrix> {
  return readMatrix(file, (head, name) =>
    NPY_MAGIC.every((b, k) => head[k] === b)
      ? parseNpyHeader(head, name)
      : parseRawHeader(head, name),
  );
}

async function readMatrix(
  file: string,
  parseHeader: (head: Buffer, file: string) => MatrixHeader,
): Promise<FeatureMatrix> {
  await assertReadableFile(file);
  const handle = await open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    const head = Buffer.alloc(Math.min(size, 65536 + 12));
    await handle.read(head, 0, head.length, 0);
    const header = parseHeader(head, file);
    const { rows, dimension, elementBytes } = header;
    const expectedBytes = header.dataOffset + rows * dimension * elementBytes;
    if (rows < 1 || dimension < 1) {
      throw new DataFormatError(
        { file },
        'a matrix with at least one row and one column',
        `shape (${rows}, ${dimension})`,
      );
    }
    if (size !== expectedBytes) {
      const dataBytes = size - header.dataOffset;
      const fits = dataBytes > 0 && dataBytes % (rows * elementBytes) === 0;
      throw new DataFormatError(
        { file },
        `${expectedBytes} bytes for the ${rows} x ${dimension} matrix its header declares`,
        size < expectedBytes
          ? `${size} bytes (truncated)`
          : `${size} bytes (${size - expectedBytes} more${fits ? `: the data is ${rows} x ${dataBytes / (rows * elementBytes)}, the header is wrong` : ''})`,
      );
    }
    const data = allocateFeatures(file, rows, dimension);
    const rowBytes = dimension * elementBytes;
    const rowsPerChunk = Math.max(1, Math.floor((8 << 20) / Math.max(rowBytes, 1)));
    const chunk = Buffer.alloc(rowsPerChunk * rowBytes);
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const half = header.fileType === 'float16' ? halfTable() : null;
    for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
      const n = Math.min(rowsPerChunk, rows - r0);
      const bytes = n * rowBytes;
      const { bytesRead } = await handle.read(chunk, 0, bytes, header.dataOffset + r0 * rowBytes);
      if (bytesRead !== bytes)
        throw new DataFormatError({ file }, `${bytes} bytes at row ${r0}`, `${bytesRead} bytes`);
      const base = r0 * dimension;
      const count = n * dimension;
      const le = header.littleEndian;
      if (elementBytes === 4)
        for (let k = 0; k < count; k++) data[base + k] = view.getFloat32(k * 4, le);
      else if (elementBytes === 2)
        for (let k = 0; k < count; k++) data[base + k] = half![view.getUint16(k * 2, le)]!;
      else for (let k = 0; k < count; k++) data[base + k] = view.getFloat64(k * 8, le);
      for (let k = 0; k < count; k++) {
        if (!Number.isFinite(data[base + k]!)) {
          const row = r0 + Math.floor(k / dimension);
          throw new DataFormatError(
            { file },
            `finite feature values (row ${row}, column ${k % dimension})`,
            String(data[base + k]),
          );
        }
      }
    }
    return { rows, dimension, data, fileType: header.fileType, source: file };
  } finally {
    await handle.close();
  }
}

/** Refuses a matrix the machine cannot hold before trying to allocate it. */
function allocateFeatures(file: string, rows: number, dimension: number): Float32Array {
  try {
    checkAllocation('features', `a ${rows} x ${dimension} feature matrix`, rows * dimension, 4);
  } catch (error) {
    throw new DataFormatError(
      { file },
      'a feature matrix that fits in memory',
      ConfigError.isInstance(error) ? error.issues[0]!.message : String(error),
    );
  }
  return new Float32Array(rows * dimension);
}

function parseNpyHeader(head: Buffer, file: string): MatrixHeader {
  if (head.length < 10 || !NPY_MAGIC.every((b, k) => head[k] === b)) {
    throw new DataFormatError(
      { file },
      'a .npy file (magic "\\x93NUMPY")',
      head.subarray(0, 6).toString('latin1'),
    );
  }
  const major = head[6]!;
  let headerLength: number;
  let start: number;
  if (major === 1) {
    headerLength = head.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    headerLength = head.readUInt32LE(8);
    start = 12;
  } else {
    throw new DataFormatError({ file }, '.npy format version 1, 2 or 3', `version ${major}`);
  }
  if (start + headerLength > head.length)
    throw new DataFormatError({ file }, 'a complete .npy header', 'a truncated header');
  const text = head.subarray(start, start + headerLength).toString('latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shape === undefined) {
    throw new DataFormatError(
      { file },
      "a .npy header dict with 'descr', 'fortran_order' and 'shape'",
      text.trim(),
    );
  }
  if (fortran === 'True')
    throw new DataFormatError({ file }, 'C order (fortran_order False)', 'Fortran order');
  const types: Record<string, [MatrixHeader['fileType'], 2 | 4 | 8]> = {
    f2: ['float16', 2],
    f4: ['float32', 4],
    f8: ['float64', 8],
  };
  const order = descr[0];
  const type = types[descr.slice(1)];
  if (type === undefined || !(order === '<' || order === '>' || order === '|' || order === '=')) {
    throw new DataFormatError({ file }, 'dtype float16, float32 or float64 (<f2, <f4, <f8)', descr);
  }
  const dims = shape
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (dims.length !== 2 || !dims.every((d) => /^\d+$/.test(d))) {
    throw new DataFormatError({ file }, 'a 2-D shape (rows, dimension)', `(${shape})`);
  }
  return {
    rows: Number(dims[0]),
    dimension: Number(dims[1]),
    dataOffset: start + headerLength,
    elementBytes: type[1],
    littleEndian: order !== '>',
    fileType: type[0],
  };
}

function parseRawHeader(head: Buffer, file: string): MatrixHeader {
  if (head.length < RAW_HEADER_BYTES || head.toString('latin1', 0, 4) !== RAW_MAGIC) {
    throw new DataFormatError(
      { file },
      `a raw feature file (magic "${RAW_MAGIC}") or a .npy file`,
      head.subarray(0, 4).toString('latin1'),
    );
  }
  const version = head.readUInt32LE(4);
  if (version !== 1)
    throw new DataFormatError({ file }, 'raw feature format version 1', `version ${version}`);
  return {
    rows: head.readUInt32LE(8),
    dimension: head.readUInt32LE(12),
    dataOffset: RAW_HEADER_BYTES,
    elementBytes: 4,
    littleEndian: true,
    fileType: 'float32',
  };
}

/** Options of {@link writeNpy}. */
export interface WriteNpyOptions {
  /** Element type in the file (default float32). */
  readonly dtype?: 'float32' | 'float16';
}

/** Writes a `rows x dimension` matrix as a C-order `.npy` file (version 1.0), atomically. */
export async function writeNpy(
  file: string,
  data: Float32Array,
  rows: number,
  dimension: number,
  options: WriteNpyOptions = {},
): Promise<void> {
  if (data.length !== rows * dimension)
    throw new DataError(
      `writeNpy: data has ${data.length} values, expected ${rows} x ${dimension}`,
    );
  const dtype = options.dtype ?? 'float32';
  const dict = `{'descr': '${dtype === 'float16' ? '<f2' : '<f4'}', 'fortran_order': False, 'shape': (${rows}, ${dimension}), }`;
  const padded = dict + ' '.repeat(63 - ((10 + dict.length) % 64)) + '\n';
  const header = Buffer.alloc(10);
  Buffer.from(NPY_MAGIC).copy(header, 0);
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(padded.length, 8);
  await writeFileAtomic(file, function* () {
    yield header;
    yield Buffer.from(padded, 'latin1');
    const rowsPerChunk = Math.max(1, Math.floor((1 << 20) / Math.max(dimension, 1)));
    for (let r = 0; r < rows; r += rowsPerChunk) {
      const part = data.subarray(r * dimension, Math.min(rows, r + rowsPerChunk) * dimension);
      if (dtype === 'float32') yield new Uint8Array(Float32Array.from(part).buffer);
      else yield new Uint8Array(Uint16Array.from(part, toHalf).buffer);
    }
  });
}

/** Writes the raw float32 layout read by {@link readRawFeatures}, atomically. */
export async function writeRawFeatures(
  file: string,
  data: Float32Array,
  rows: number,
  dimension: number,
): Promise<void> {
  if (data.length !== rows * dimension)
    throw new DataError(
      `writeRawFeatures: data has ${data.length} values, expected ${rows} x ${dimension}`,
    );
  const header = Buffer.alloc(RAW_HEADER_BYTES);
  header.write(RAW_MAGIC, 0, 'latin1');
  header.writeUInt32LE(1, 4);
  header.writeUInt32LE(rows, 8);
  header.writeUInt32LE(dimension, 12);
  await writeFileAtomic(file, function* () {
    yield header;
    yield new Uint8Array(Float32Array.from(data).buffer);
  });
}

/** How the rows of a feature file map to items. */
export type RowAlignment =
  /** Row `r` holds the item whose source id is `rowIds[r]` (e.g. from a manifest). */
  | { readonly rowIds: readonly string[] }
  /** Row `r` holds the item whose source id is the decimal `r + offset` (AMR's `f_resnet.npy`: offset 0). */
  | { readonly sourceIdOffset: number };

/** Options of {@link alignItemFeatures}. */
export interface AlignOptions {
  /** The dimension the caller expects (e.g. 2048 for ResNet-50); checked when given. */
  readonly expectedDimension?: number;
  /** `mark` (default): items without a row are marked missing; `error`: throw. */
  readonly missing?: 'mark' | 'error';
}

/**
 * Aligns a feature matrix to a data set's dense item ids through the item id map.
 * @throws {@link DataFormatError} when `rowIds` has another length than the matrix has
 * rows, when the dimension differs from `expectedDimension`, or (with `missing: 'error'`)
 * when an item has no row.
 */
export function alignItemFeatures(
  matrix: FeatureMatrix,
  itemIdMap: IdMap,
  alignment: RowAlignment,
  options: AlignOptions = {},
): ItemFeatures {
  const issues = new IssueCollector();
  if (options.expectedDimension !== undefined)
    issues.integer('expectedDimension', options.expectedDimension, 1);
  if (options.missing !== undefined) issues.oneOf('missing', options.missing, ['mark', 'error']);
  if ('sourceIdOffset' in alignment)
    issues.integer('sourceIdOffset', alignment.sourceIdOffset, -Number.MAX_SAFE_INTEGER);
  issues.throwIfAny();
  const file = matrix.source;
  const d = matrix.dimension;
  if (options.expectedDimension !== undefined && d !== options.expectedDimension) {
    throw new DataFormatError(
      { file },
      `feature dimension ${options.expectedDimension}`,
      `dimension ${d}`,
    );
  }
  if ('rowIds' in alignment && alignment.rowIds.length !== matrix.rows) {
    throw new DataFormatError(
      { file },
      `${alignment.rowIds.length} rows, one per listed item id`,
      `${matrix.rows} rows`,
    );
  }
  const numItems = itemIdMap.size;
  const out = new Float32Array(numItems * d);
  const hasFeatures = new Uint8Array(numItems);
  let unusedRows = 0;
  for (let r = 0; r < matrix.rows; r++) {
    const sourceId =
      'rowIds' in alignment ? alignment.rowIds[r]! : String(r + alignment.sourceIdOffset);
    const item = itemIdMap.get(sourceId);
    if (item === undefined) {
      unusedRows++;
      continue;
    }
    if (hasFeatures[item])
      throw new DataFormatError(
        { file },
        `one row per item`,
        `a second row (${r}) for item ${sourceId}`,
      );
    out.set(matrix.data.subarray(r * d, (r + 1) * d), item * d);
    hasFeatures[item] = 1;
  }
  const missing: number[] = [];
  for (let i = 0; i < numItems; i++) if (!hasFeatures[i]) missing.push(i);
  if (missing.length > 0 && options.missing === 'error') {
    const shown = missing.slice(0, 5).map((i) => itemIdMap.toSource(i));
    throw new DataFormatError(
      { file },
      'a feature row for every item',
      `${missing.length} items without one (${shown.join(', ')}${missing.length > 5 ? ', ...' : ''})`,
    );
  }
  return {
    matrix: out,
    numItems,
    dimension: d,
    hasFeatures,
    missingItems: Int32Array.from(missing),
    unusedRows,
    source: file,
  };
}

let HALF_TABLE: Float32Array | undefined;

/** float16 bit pattern -> float32 value, for all 65,536 patterns. */
function halfTable(): Float32Array {
  if (HALF_TABLE) return HALF_TABLE;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) table[h] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) table[h] = mantissa === 0 ? sign * Infinity : Number.NaN;
    else table[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  HALF_TABLE = table;
  return table;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** float32 -> float16 bits, round to nearest even, with overflow to infinity and subnormals. */
export function toHalf(value: number): number {
  F32[0] = value;
  const x = U32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let result = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    if (rest > half || (rest === half && result & 1)) result++;
    return sign | result;
  }
  let result = mantissa >>> 13;
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && result & 1)) {
    result++;
    if (result === 0x400) {
      result = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | result;
}
