import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const FLUSH_BYTES = 1 << 20;

/**
 * Writes a file atomically: the chunks go to a temporary file beside the target, which
 * is flushed to disk and renamed over the target only once everything is written. A
 * failure (or a kill) never leaves a partial target file.
 *
 * @param chunks - strings (written as UTF-8) or byte arrays, produced lazily.
 */
export async function writeFileAtomic(
  file: string,
  chunks: () => Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
): Promise<void> {
  const temporary = join(
    dirname(file),
    `.${basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`,
  );
  const handle = await open(temporary, 'w');
  try {
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (pendingBytes === 0) return;
      await handle.write(Buffer.concat(pending, pendingBytes));
      pending = [];
      pendingBytes = 0;
    };
    for await (const chunk of chunks()) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      pending.push(bytes);
      pendingBytes += bytes.length;
      if (pendingBytes >= FLUSH_BYTES) await flush();
    }
    await flush();
    await handle.sync();
    await handle.close();
    await rename(temporary, file);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}
