/**
 * The run-folder lock: `.advrec.lock`, created exclusively, holding its owner (host, boot id,
 * PID namespace, pid, start time) and renewed as a lease (its modification time) while the
 * command runs. It holds between hosts and containers that share the folder's file system:
 * another process takes a lock over only when its owner is provably gone (same host, boot and
 * PID namespace, and the pid is dead) or its lease has expired.
 */
import { readFileSync, readlinkSync, unlinkSync } from 'node:fs';
import { open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigError, processIsAlive } from '@advrec/data';

/** The lock file's name in a run folder. */
export const LOCK_FILE = '.advrec.lock';

/** How long a lock stays valid after its last renewal (ms; `ADVREC_LOCK_LEASE_MS` overrides, for tests). */
export function leaseMilliseconds(): number {
  const given = Number(process.env.ADVREC_LOCK_LEASE_MS);
  return Number.isFinite(given) && given > 0 ? given : 60_000;
}

/** Who holds a lock. */
export interface LockOwner {
  readonly host: string;
  /** `/proc/sys/kernel/random/boot_id`: a reboot changes it (empty where unreadable). */
  readonly bootId: string;
  /** The PID namespace (`/proc/self/ns/pid`): a pid means nothing outside it (empty where unreadable). */
  readonly pidNamespace: string;
  readonly pid: number;
  readonly started: string;
}

function readOr(read: () => string): string {
  try {
    return read().trim();
  } catch {
    return '';
  }
}

/** This process as a lock owner. */
export function thisOwner(): LockOwner {
  return {
    host: hostname(),
    bootId: readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
    pidNamespace: readOr(() => readlinkSync('/proc/self/ns/pid')),
    pid: process.pid,
    started: new Date().toISOString(),
  };
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.host === 'string' && typeof o.pid === 'number' && typeof o.started === 'string')
      return {
        host: o.host,
        bootId: typeof o.bootId === 'string' ? o.bootId : '',
        pidNamespace: typeof o.pidNamespace === 'string' ? o.pidNamespace : '',
        pid: o.pid,
        started: o.started,
      };
  } catch {
    // Not a record (a lock of an older advrec held the bare pid).
  }
  return null;
}

/** Whether `owner` is this machine, this boot and this PID namespace: its pid can be checked. */
function sameProcessSpace(owner: LockOwner, me: LockOwner): boolean {
  return (
    owner.host === me.host &&
    owner.bootId !== '' &&
    owner.bootId === me.bootId &&
    owner.pidNamespace !== '' &&
    owner.pidNamespace === me.pidNamespace
  );
}

/** Releases a run folder's lock (also done when the process exits). */
export type ReleaseLock = () => Promise<void>;

/**
 * Locks a run folder for this process. A lock held by a live process, or by one we cannot
 * see (another host, container or PID namespace) whose lease is fresh, refuses the folder
 * with a message naming the owner and the lock file; a lock whose owner is provably gone, or
 * whose lease expired, is taken over.
 */
export async function lockRunFolder(
  folder: string,
  path = '--out',
  onLost: (error: LockLostError) => void = endTheProcess,
): Promise<ReleaseLock> {
  const file = join(folder, LOCK_FILE);
  const me = thisOwner();
  const record = `${JSON.stringify(me)}\n`;
  const lease = leaseMilliseconds();
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(record);
      await handle.close();
      // A process taking over a stale lock at the same moment could have replaced ours.
      if ((await readFile(file, 'utf8').catch(() => '')) !== record) continue;
      return holdLease(file, record, lease, onLost);
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
      const [text, info] = await Promise.all([
        readFile(file, 'utf8').catch(() => ''),
        stat(file).catch(() => null),
      ]);
      if (!info) continue; // released meanwhile
      const owner = parseOwner(text);
      const legacyPid = owner ? null : Number(text.trim());
      const age = Date.now() - info.mtimeMs;
      let alive: boolean;
      if (owner && sameProcessSpace(owner, me)) alive = processIsAlive(owner.pid);
      else if (legacyPid !== null && Number.isInteger(legacyPid) && legacyPid > 0 && age < lease)
        alive = processIsAlive(legacyPid);
      else alive = age < lease;
      if (alive) {
        const who = owner
          ? `process ${owner.pid} on ${owner.host}${sameProcessSpace(owner, me) ? '' : ' (another host, container or PID namespace)'}, since ${owner.started}`
          : legacyPid !== null && Number.isInteger(legacyPid) && legacyPid > 0
            ? `process ${legacyPid}`
            : 'an owner it does not name';
        throw new ConfigError([
          {
            path,
            message: `${folder} is in use by another advrec command (${who}; lock file ${file}, renewed ${Math.max(0, Math.round(age / 1000))} s ago); wait for it or choose another ${path}. A lock whose owner died expires ${Math.round(lease / 1000)} s after its last renewal`,
          },
        ]);
      }
      // The owner is gone or its lease expired: take the lock over.
      await unlink(file).catch(() => undefined);
    }
  }
  throw new ConfigError([{ path, message: `could not lock ${folder} (lock file ${file})` }]);
}

/**
 * A process's lock was taken over while it could not renew it (stopped or frozen longer than
 * the lease, its host cut off from the shared file system): another command now owns the
 * folder, and this one must not write another byte there.
 */
export class LockLostError extends ConfigError {
  constructor(folder: string, file: string, holder: string) {
    super([
      {
        path: 'lock',
        message: `${folder}: this command's lock was taken over by another advrec command (${holder}; lock file ${file}) after its lease expired, as when a process is stopped or its host cut off for longer than the lease; stopped without writing more`,
      },
    ]);
  }
}

/** Ends the command: thrown from a timer, the CLI's fatal-error handler prints it and exits. */
function endTheProcess(error: LockLostError): void {
  setImmediate(() => {
    throw error;
  });
}

/**
 * Renews the lease every third of its length until released; removes the file at exit. Each
 * renewal first reads the lock: when it is no longer this command's record (taken over after
 * the lease expired), `onLost` is given a {@link LockLostError} (by default thrown from a
 * timer, so that the CLI's fatal-error handler prints it and ends the command at once), as
 * two writers must not share a folder.
 */
function holdLease(
  file: string,
  record: string,
  lease: number,
  onLost: (error: LockLostError) => void,
): ReleaseLock {
  const renew = setInterval(
    () => {
      void (async () => {
        const text = await readFile(file, 'utf8').catch(() => null);
        if (text !== null && text !== record) {
          clearInterval(renew);
          const owner = parseOwner(text);
          const holder = owner
            ? `process ${owner.pid} on ${owner.host}, since ${owner.started}`
            : 'an owner it does not name';
          onLost(new LockLostError(dirname(file), file, holder));
          return;
        }
        const now = new Date();
        await utimes(file, now, now).catch(() => undefined);
      })();
    },
    Math.max(50, Math.floor(lease / 3)),
  );
  renew.unref();
  const onExit = (): void => {
    try {
      // Only our own lock: a taken-over one belongs to someone else now.
      if (readFileSync(file, 'utf8') === record) unlinkSync(file);
    } catch {
      // already gone
    }
  };
  process.once('exit', onExit);
  return async () => {
    clearInterval(renew);
    process.removeListener('exit', onExit);
    if ((await readFile(file, 'utf8').catch(() => '')) === record)
      await unlink(file).catch(() => undefined);
  };
}
