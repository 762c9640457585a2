import { open, readdir, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { WriteError } from './errors.js';

const FLUSH_BYTES = 1 << 20;

/** What a failed system call says, as a {@link WriteError} naming `file`. */
function writeErrorOf(file: string, error: unknown): WriteError {
  if (WriteError.isInstance(error)) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const reasons: Record<string, string> = {
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'the file system is read-only',
    EISDIR: 'a folder is in the way',
    ENOTDIR: 'a part of the path is a file, not a folder',
    ENOENT: 'its folder does not exist',
  };
  const known = typeof code === 'string' ? reasons[code] : undefined;
  return new WriteError(
    file,
    known ?? String((error as Error)?.message ?? error),
    typeof code === 'string' ? code : undefined,
    { cause: error },
  );
}

/** Writes all of `bytes` (a short write is retried from where it stopped). */
async function writeAll(handle: FileHandle, bytes: Uint8Array, file: string): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    if (bytesWritten <= 0)
      throw new WriteError(
        file,
        `the system accepted 0 of ${bytes.length - offset} bytes`,
        'ENOSPC',
      );
    offset += bytesWritten;
  }
}

/**
 * Writes a file atomically and completely: the chunks go to a temporary file beside the
 * target; every byte is written (short writes retried), the size checked, the data fsynced,
 * and only then is the temporary renamed over the target (and the folder fsynced). A
 * failure (disk full, a kill) never leaves a partial target file and keeps the previous one.
 *
 * @param chunks - strings (written as UTF-8) or byte arrays, produced lazily.
 * @throws {@link WriteError} naming the file and the reason (`ENOSPC`, `EACCES`, ...).
 */
export async function writeFileAtomic(
  file: string,
  chunks: () => Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
): Promise<void> {
  const temporary = join(
    dirname(file),
    `.${basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`,
  );
  let handle: FileHandle;
  try {
    handle = await open(temporary, 'w');
  } catch (error) {
    throw writeErrorOf(file, error);
  }
  try {
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let total = 0;
    const flush = async (): Promise<void> => {
      if (pendingBytes === 0) return;
      await writeAll(handle, Buffer.concat(pending, pendingBytes), file);
      total += pendingBytes;
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
    const { size } = await handle.stat();
    if (size !== total)
      throw new WriteError(file, `${size} of ${total} bytes reached the disk`, 'ENOSPC');
    await handle.close();
    await rename(temporary, file);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    // Errors of the chunk producer (a model, a serializer) are theirs; system errors are ours.
    const code = (error as { code?: unknown } | null)?.code;
    throw typeof code === 'string' && /^E[A-Z]+$/.test(code) ? writeErrorOf(file, error) : error;
  }
  // The rename itself is durable once the folder is flushed (where the platform allows it).
  const folder = await open(dirname(file), 'r').catch(() => null);
  if (folder) {
    await folder.sync().catch(() => undefined);
    await folder.close().catch(() => undefined);
  }
}

/** `.<name>.<pid>.<time>.tmp`: the temporary files {@link writeFileAtomic} writes. */
const TEMPORARY = /^\..+\.(\d+)\.[0-9a-z]+\.tmp$/;

/**
 * Deletes the temporary files that {@link writeFileAtomic} left in `folder` when its process
 * was killed mid-write (a checkpoint can leave tens of MB): those whose process no longer
 * runs. Files of running processes, and every other file, are left alone.
 *
 * @returns the names removed.
 */
export async function removeStaleTemporaries(folder: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = TEMPORARY.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || processIsAlive(pid)) continue;
    await unlink(join(folder, name)).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

/** Whether a process with this pid runs (one owned by another user counts as running). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
