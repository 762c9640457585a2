import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { DataFormatError } from './errors.js';

/** Text encodings the readers accept. */
export type TextEncodingName = 'utf-8' | 'latin1';

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
  const decoder = new TextDecoder(options.encoding ?? 'utf-8');
  let stream: Readable = createReadStream(file, { highWaterMark: options.chunkBytes ?? 1 << 20 });
  if (file.endsWith('.gz')) stream = stream.pipe(createGunzip());

  let carry = '';
  let lineNumber = 0;
  let bytes = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      let text = decoder.decode(chunk, { stream: true });
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
    }
  } catch (error) {
    stream.destroy();
    if (isNodeError(error) && (error.code === 'Z_DATA_ERROR' || error.code === 'Z_BUF_ERROR')) {
      throw new DataFormatError({ file }, 'a valid gzip stream', error.message, { cause: error });
    }
    throw error;
  }
  carry += decoder.decode();
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

function stripCr(line: string): string {
  return line.length > 0 && line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
}

function isNodeError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && 'code' in error;
}
