import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import type * as FsPromises from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

/** Faults injected into the file handles `writeFileAtomic` opens. */
const fault = vi.hoisted(() => ({
  /** Bytes the disk still takes before it is full (Infinity: no fault). */
  room: Number.POSITIVE_INFINITY,
  /** Largest write the system accepts at once (short writes). */
  maxWrite: Number.POSITIVE_INFINITY,
  /** Report the full size from write() although the disk is full (a lying device). */
  lie: false,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof FsPromises>();
  return {
    ...actual,
    open: async (...args: Parameters<typeof actual.open>) => {
      const handle = await actual.open(...args);
      if (args[1] !== 'w') return handle;
      const write = handle.write.bind(handle) as (
        buffer: Uint8Array,
        offset: number,
        length: number,
      ) => Promise<{ bytesWritten: number }>;
      return Object.assign(Object.create(handle) as typeof handle, {
        write: async (buffer: Uint8Array, offset = 0, length = buffer.length - offset) => {
          const take = Math.min(length, fault.maxWrite, fault.room);
          if (take <= 0 && length > 0) {
            if (fault.lie) return { bytesWritten: length, buffer };
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
              code: 'ENOSPC',
            });
          }
          fault.room -= take;
          const result = await write(buffer, offset, take);
          return fault.lie ? { bytesWritten: length, buffer } : result;
        },
        sync: () => handle.sync(),
        stat: () => handle.stat(),
        close: () => handle.close(),
      });
    },
  };
});

const { removeStaleTemporaries, writeFileAtomic } = await import('./write.js');
const { WriteError } = await import('./errors.js');

afterEach(() => {
  fault.room = Number.POSITIVE_INFINITY;
  fault.maxWrite = Number.POSITIVE_INFINITY;
  fault.lie = false;
});

function folder(): string {
  return mkdtempSync(join(tmpdir(), 'advrec-write-'));
}

const payload = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, k) => k % 251);

describe('writeFileAtomic under faults', () => {
  it('retries short writes until every byte is on disk', async () => {
    const dir = folder();
    fault.maxWrite = 1000;
    await writeFileAtomic(join(dir, 'f.bin'), () => [payload(5000), 'tail']);
    const bytes = readFileSync(join(dir, 'f.bin'));
    expect(bytes.length).toBe(5004);
    expect(bytes.subarray(0, 5000).equals(Buffer.from(payload(5000)))).toBe(true);
  });

  it('a full disk: a WriteError naming the file and ENOSPC, the previous file kept, no temporary left', async () => {
    const dir = folder();
    const file = join(dir, 'model.ckpt');
    writeFileSync(file, 'the good checkpoint');
    fault.room = 3000;
    fault.maxWrite = 1024;
    const error = await writeFileAtomic(file, () => [payload(2_000_000)]).catch((e: unknown) => e);
    expect(WriteError.isInstance(error)).toBe(true);
    expect(String(error)).toMatch(
      /could not write .*model\.ckpt: no space left on the device \(ENOSPC\); the previous file, if any, is kept/,
    );
    expect(readFileSync(file, 'utf8')).toBe('the good checkpoint');
    expect(readdirSync(dir)).toEqual(['model.ckpt']);
  });

  it('a device that reports writes it did not keep is caught by the size check', async () => {
    const dir = folder();
    const file = join(dir, 'features.npy');
    writeFileSync(file, 'previous');
    fault.room = 100;
    fault.lie = true;
    const error = await writeFileAtomic(file, () => [payload(10_000)]).catch((e: unknown) => e);
    expect(WriteError.isInstance(error)).toBe(true);
    expect(String(error)).toMatch(/100 of 10000 bytes reached the disk/);
    expect(readFileSync(file, 'utf8')).toBe('previous');
    expect(readdirSync(dir)).toEqual(['features.npy']);
  });

  it('a missing folder or a folder in the way is a WriteError, not a stack trace', async () => {
    const dir = folder();
    await expect(writeFileAtomic(join(dir, 'nope', 'f'), () => ['x'])).rejects.toThrow(
      /could not write .*nope.f: its folder does not exist \(ENOENT\)/,
    );
    writeFileSync(join(dir, 'file'), 'x');
    await expect(writeFileAtomic(join(dir, 'file', 'f'), () => ['x'])).rejects.toThrow(
      /a part of the path is a file, not a folder \(ENOTDIR\)/,
    );
  });

  it("errors of the chunk producer are the producer's own", async () => {
    const dir = folder();
    await expect(
      writeFileAtomic(join(dir, 'f'), function* () {
        yield 'a';
        throw new RangeError('the model is broken');
      }),
    ).rejects.toThrow(RangeError);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('removeStaleTemporaries', () => {
  it('removes the temporaries of dead processes only, and nothing else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'advrec-stale-'));
    const dead = 2 ** 22 + 1; // above Linux's largest pid_max: never a running process
    const names = [
      `.model.ckpt.${dead}.lq3x8k.tmp`, // killed mid-write: removed
      `.model.ckpt.${process.pid}.lq3x8k.tmp`, // this process: kept
      `.model.ckpt.${process.ppid}.lq3x8k.tmp`, // a running process: kept
      'model.ckpt', // not a temporary
      `model.ckpt.${dead}.tmp`, // not advrec's pattern
    ];
    for (const name of names) writeFileSync(join(dir, name), 'x');
    expect(await removeStaleTemporaries(dir)).toEqual([names[0]]);
    expect(readdirSync(dir).sort()).toEqual(names.slice(1).sort());
    expect(await removeStaleTemporaries(join(dir, 'missing'))).toEqual([]);
  });
});
