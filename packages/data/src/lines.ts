import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { DataFormatError } from './errors.js';

/** Text encodings the readers accept. */
export type TextEncodingName = 'utf-8' | 'latin1';

/**
 * The longest line the readers accept (16 Mi characters): a user-item list of 100,000 items
 * is about 1 Mi; a file without newlines would otherwise grow one string until V8 refuses.
 */
export const MAX_LINE_CHARS = 16 * 2 ** 20;

/** Options of {@link readLines}. */
export interface ReadLinesOptions {
  /** Text encoding (default `utf-8`; ML-1M's `.dat` files are `latin1`). */
  readonly encoding?: TextEncodingName;
  /** Bytes per read (default 1 MiB). */
  readonly chunkBytes?: number;
}

/**
 * Streams a text file line by line without ever holding the whole file in one string.
 * Handles `\n` and `\r\n` endings, a UTF-8 byte-order mark, a last line without a
 * newline, and gzip files (name ending in `.gz`). Calls `onLine(line, lineNumber)` with
 * 1-based line numbers; a trailing newline does not produce an extra empty line.
 *
 * @returns the number of lines seen.
 * @throws {@link DataFormatError} when the file is missing, not a regular file, or empty;
 * errors thrown by `onLine` propagate unchanged and stop the read.
 */
export async function readLines(
  file: string,
  onLine: (line: string, lineNumber: number) => void,
  options: ReadLinesOptions = {},
): Promise<number> {
  await assertReadableFile(file);
  const encoding = options.encoding ?? 'utf-8';
  // utf-8 is decoded strictly: a Latin-1 file read as UTF-8 would otherwise merge distinct
  // ids ("José" and "Josè" both become "Jos\uFFFD").
  const decoder = new TextDecoder(encoding, { fatal: encoding === 'utf-8' });
  let stream: Readable = createReadStream(file, { highWaterMark: options.chunkBytes ?? 1 << 20 });
  if (file.endsWith('.gz')) stream = stream.pipe(createGunzip());

  let carry = '';
  let lineNumber = 0;
  let bytes = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      let text: string;
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch (error) {
        throw invalidUtf8(file, lineNumber, carry, chunk, error);
      }
      if (lineNumber === 0 && carry === '' && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      let start = 0;
      let newline = text.indexOf('\n', start);
      if (newline >= 0 && carry !== '') {
        lineNumber++;
        onLine(stripCr(carry + text.slice(0, newline)), lineNumber);
        carry = '';
        start = newline + 1;
        newline = text.indexOf('\n', start);
      }
      while (newline >= 0) {
        lineNumber++;
        onLine(stripCr(text.slice(start, newline)), lineNumber);
        start = newline + 1;
        newline = text.indexOf('\n', start);
      }
      carry += text.slice(start);
      if (carry.length > MAX_LINE_CHARS)
        throw new DataFormatError(
          { file, line: lineNumber + 1 },
          `lines of at most ${MAX_LINE_CHARS / 2 ** 20} Mi characters`,
          `a line with no end in its first ${Math.floor(carry.length / 2 ** 20)} Mi characters (is this a text file with one record per line?)`,
        );
    }
  } catch (error) {
    stream.destroy();
    if (isNodeError(error) && (error.code === 'Z_DATA_ERROR' || error.code === 'Z_BUF_ERROR')) {
      throw new DataFormatError({ file }, 'a valid gzip stream', error.message, { cause: error });
    }
    throw error;
  }
  try {
    carry += decoder.decode();
  } catch (error) {
    throw invalidUtf8(file, lineNumber, carry, Buffer.alloc(0), error);
  }
  if (carry !== '') {
    lineNumber++;
    onLine(stripCr(carry), lineNumber);
  }
  if (bytes === 0) throw new DataFormatError({ file }, 'a non-empty file', 'an empty file');
  return lineNumber;
}

/**
 * Throws {@link DataFormatError} naming the path unless it is an existing regular file.
 * @internal
 */
export async function assertReadableFile(file: string): Promise<void> {
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    const reason = isNodeError(error) && error.code === 'ENOENT' ? 'no such file' : String(error);
    throw new DataFormatError({ file }, 'an existing, readable file', reason, { cause: error });
  }
  if (!info.isFile())
    throw new DataFormatError({ file }, 'a regular file', 'a directory or device');
}

/** The error for bytes that are not UTF-8, naming the line they are on. */
function invalidUtf8(
  file: string,
  linesDone: number,
  carry: string,
  chunk: Buffer,
  cause: unknown,
): DataFormatError {
  const lenient = carry + new TextDecoder('utf-8').decode(chunk);
  const bad = lenient.indexOf('\uFFFD');
  const before = bad < 0 ? lenient : lenient.slice(0, bad);
  let line = linesDone + 1;
  for (let k = before.indexOf('\n'); k >= 0; k = before.indexOf('\n', k + 1)) line++;
  return new DataFormatError(
    { file, line },
    'UTF-8 text (set the encoding to latin1 for a Latin-1 / ISO-8859-1 file)',
    'bytes that are not valid UTF-8',
    { cause },
  );
}

function stripCr(line: string): string {
  return line.length > 0 && line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
}

function isNodeError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && 'code' in error;
}
