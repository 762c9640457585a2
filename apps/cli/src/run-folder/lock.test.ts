import {
  mkdtempSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '@advrec/data';
import { LOCK_FILE, lockRunFolder, thisOwner } from './lock.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function folder(): string {
  return mkdtempSync(join(tmpdir(), 'advrec-lock-'));
}

/** Writes a lock record as another owner would, its lease renewed `ageMs` ago. */
function foreignLock(dir: string, owner: Record<string, unknown>, ageMs: number): void {
  const file = join(dir, LOCK_FILE);
  writeFileSync(file, `${JSON.stringify(owner)}\n`);
  const when = new Date(Date.now() - ageMs);
  utimesSync(file, when, when);
}

async function refusal(dir: string): Promise<string> {
  try {
    const release = await lockRunFolder(dir);
    await release();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues[0]!.message;
  }
  throw new Error('the lock was taken');
}

describe('run-folder lock (lease between hosts)', () => {
  afterEach(() => {
    delete process.env.ADVREC_LOCK_LEASE_MS;
  });

  it('records its owner: host, boot id, PID namespace, pid and start', async () => {
    const dir = folder();
    const release = await lockRunFolder(dir);
    const record = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'));
    const me = thisOwner();
    expect(record).toMatchObject({
      host: me.host,
      bootId: me.bootId,
      pidNamespace: me.pidNamespace,
      pid: process.pid,
    });
    expect(me.bootId).not.toBe('');
    expect(me.pidNamespace).toMatch(/^pid:\[\d+\]$/);
    await release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('refuses a fresh lock of another PID namespace whose pid looks dead here, naming owner and file', async () => {
    const dir = folder();
    const me = thisOwner();
    // pid 2147483646 does not exist in this namespace; in the owner's it may well run.
    foreignLock(dir, { ...me, pidNamespace: 'pid:[1]', pid: 2147483646 }, 1000);
    const message = await refusal(dir);
    expect(message).toMatch(/in use by another advrec command \(process 2147483646 on /);
    expect(message).toMatch(/another host, container or PID namespace/);
    expect(message).toContain(join(dir, LOCK_FILE));
    expect(message).toMatch(/expires 60 s after its last renewal/);
    // Another host, the same.
    foreignLock(dir, { ...me, host: 'elsewhere', pid: 1 }, 1000);
    expect(await refusal(dir)).toMatch(/process 1 on elsewhere \(another host/);
  });

  it('takes over a foreign lock whose lease expired, and a local one whose process is gone', async () => {
    const dir = folder();
    const me = thisOwner();
    foreignLock(dir, { ...me, host: 'elsewhere', pid: 1 }, 61_000);
    const release = await lockRunFolder(dir);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    await release();
    // Same host, boot and namespace, dead pid: taken over at once, however fresh.
    foreignLock(dir, { ...me, pid: 2147483646 }, 0);
    const again = await lockRunFolder(dir);
    await again();
  });

  it('refuses a local lock whose process lives; a bare pid of an older advrec is checked too', async () => {
    const dir = folder();
    foreignLock(dir, { ...thisOwner() }, 0);
    expect(await refusal(dir)).toMatch(new RegExp(`process ${process.pid} on `));
    // A bare pid (older advrec): alive refuses, dead is taken over.
    writeFileSync(join(dir, LOCK_FILE), `${process.pid}\n`);
    expect(await refusal(dir)).toMatch(new RegExp(`\\(process ${process.pid}; lock file`));
    writeFileSync(join(dir, LOCK_FILE), '2147483646\n');
    await (
      await lockRunFolder(dir)
    )();
  });

  it('renews its lease while held, so it outlives the lease length; release leaves a taken-over lock alone', async () => {
    process.env.ADVREC_LOCK_LEASE_MS = '300';
    const dir = folder();
    const file = join(dir, LOCK_FILE);
    const lost: Error[] = [];
    const release = await lockRunFolder(dir, '--out', (error) => lost.push(error));
    const first = statSync(file).mtimeMs;
    await sleep(700);
    expect(statSync(file).mtimeMs).toBeGreaterThan(first);
    expect(lost).toEqual([]);
    // Seen from another namespace, the lock is still fresh.
    const record = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, `${JSON.stringify({ ...record, pidNamespace: 'pid:[1]' })}\n`);
    expect(await refusal(dir)).toMatch(/another host, container or PID namespace/);
    // Now the file is someone else's record: the next renewal sees it and says the lock is lost.
    await sleep(250);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.message).toMatch(
      /this command's lock was taken over by another advrec command/,
    );
    // Our release must not delete the new owner's lock.
    await release();
    expect(existsSync(file)).toBe(true);
  });
});
