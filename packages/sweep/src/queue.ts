/**
 * Jobs on a Redis-backed queue (BullMQ): a sweep (or a sharded extraction) adds jobs and waits
 * for them; queue workers on any number of machines run them. A job's id is its run (or
 * shard) and its sweep's fingerprint, so adding the same sweep twice adds nothing; a worker
 * that dies (kill -9, a lost machine) stops renewing its job's lock and another worker takes
 * the job over (BullMQ's stalled-job check); every job runs in a worker thread (kept between
 * jobs), so the worker's own thread keeps renewing locks while a job computes.
 *
 * `bullmq` and `ioredis` are optional peer dependencies, loaded when a queue is used: without
 * them the in-process pool works and a queue is refused with one line naming the package.
 */
import { AdvrecError, ConfigError } from '@advrec/data';
import type { JobJson, Queue as BullQueue, Job as QueueJob } from 'bullmq';
import { JobFailedError, asJobFailure, importJobRunner } from './jobs.js';
import type { SweepJob, SweepJobResult } from './jobs.js';
import type { JobEvents } from './pool.js';
import { JobThread } from './pool.js';

/** The default queue name (BullMQ keys `bull:advrec:*`). */
export const DEFAULT_QUEUE_NAME = 'advrec';

/** Thrown when a queue is asked for and its optional package is not installed. */
export class QueuePackageMissingError extends ConfigError {
  constructor(
    readonly packageName: 'bullmq' | 'ioredis',
    flag: string,
  ) {
    super([
      {
        path: flag,
        message: `the job queue needs the optional package ${packageName}, which is not installed (npm install bullmq ioredis), or run without ${flag} to use the in-process pool`,
      },
    ]);
  }
}

/** Loads an optional queue package, or refuses with {@link QueuePackageMissingError}. */
async function optional<T>(
  name: 'bullmq' | 'ioredis',
  flag: string,
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND')
      throw new QueuePackageMissingError(name, flag);
    throw error;
  }
}

function connectionOf(url: string): { url: string; maxRetriesPerRequest: null } {
  return { url, maxRetriesPerRequest: null };
}

/** A Redis URL as it may be printed: its password replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*):[^@/]*@/, '$1:***@');
}

/** How long a lost Redis server is waited for, by default (ms). */
export const DEFAULT_QUEUE_LOST_AFTER_MS = 30_000;

const QUEUE_LOST_ERROR = Symbol.for('advrec.error.QueueLostError');

/**
 * The queue's Redis server stopped answering for longer than the bounded wait. The jobs stay
 * on the queue (Redis keeps them, or loses them with its own data): start the server again
 * and run the same command to go on. The `advrec` CLI exits with code 6.
 */
export class QueueLostError extends AdvrecError {
  readonly [QUEUE_LOST_ERROR] = true;
  constructor(message: string) {
    super(message);
    this.name = 'QueueLostError';
  }

  static override isInstance(value: unknown): value is QueueLostError {
    return typeof value === 'object' && value !== null && QUEUE_LOST_ERROR in value;
  }
}

/** Whether a Redis error is the server refusing the URL's credentials. */
function isAuthError(message: string): boolean {
  return /WRONGPASS|NOAUTH|invalid (username-)?password|AUTH failed|without any password configured/i.test(
    message,
  );
}

/**
 * Watches a Redis server with its own connection (a PING every second): `lost` rejects with
 * a {@link QueueLostError} once no PING has been answered for `lostAfterMs`, and `log` is
 * told once, in one line, when the server stops answering and when it is back.
 */
async function watchRedis(
  url: string,
  what: string,
  lostAfterMs: number,
  log: (line: string) => void,
): Promise<{ readonly lost: Promise<never>; stop(): void }> {
  const { Redis } = await optional('ioredis', '--queue', () => import('ioredis'));
  const client = new Redis(url, {
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => 500,
  });
  client.on('error', () => undefined);
  let lastAnswer = Date.now();
  let down: string | null = null;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const lost = new Promise<never>((_, reject) => {
    const check = async (): Promise<void> => {
      try {
        await Promise.race([
          client.ping(),
          new Promise((_, late) => setTimeout(() => late(new Error('no answer in 2 s')), 2000)),
        ]);
        lastAnswer = Date.now();
        if (down !== null) log(`${what}: Redis at ${redactUrl(url)} answers again`);
        down = null;
      } catch (error) {
        if (stopped) return;
        const reason = (error as Error).message.replace(/\s+/g, ' ');
        if (down === null)
          log(
            `${what}: Redis at ${redactUrl(url)} does not answer (${reason}); waiting up to ${Math.round(lostAfterMs / 1000)} s for it`,
          );
        down = reason;
        if (Date.now() - lastAnswer >= lostAfterMs) {
          reject(
            new QueueLostError(
              `${what}: the Redis server at ${redactUrl(url)} has not answered for ${Math.round((Date.now() - lastAnswer) / 1000)} s (${down}); the jobs stay on the queue: start Redis again and run the same command to go on`,
            ),
          );
          return;
        }
      }
      if (!stopped) timer = setTimeout(() => void check(), 1000);
    };
    timer = setTimeout(() => void check(), 1000);
  });
  lost.catch(() => undefined);
  return {
    lost,
    stop() {
      stopped = true;
      clearTimeout(timer);
      client.disconnect();
    },
  };
}

/** Awaits `close`, at most 5 s: with the server gone, a close can wait for ever. */
async function closeWithin(close: () => Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    close().catch(() => undefined),
    new Promise((done) => (timer = setTimeout(done, 5000))),
  ]);
  clearTimeout(timer);
}

/** Runs `body` until it ends or `lost` rejects, then closes (see {@link closeWithin}). */
async function untilLost<T>(
  body: Promise<T>,
  lost: Promise<never>,
  close: () => Promise<unknown>,
): Promise<T> {
  body.catch(() => undefined);
  try {
    return await Promise.race([body, lost]);
  } finally {
    await closeWithin(close);
  }
}

/** Checks a `redis://` URL and that a server answers there (within 5 s), naming the flag. */
export async function checkQueue(url: string, flag = '--queue'): Promise<void> {
  if (!/^rediss?:\/\//.test(url))
    throw new ConfigError([
      { path: flag, message: `must be a redis:// or rediss:// URL, got "${url}"` },
    ]);
  const { Redis } = await optional('ioredis', flag, () => import('ioredis'));
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // A refused AUTH arrives as an error event; the connect then fails as "Connection is closed".
  let refused: string | null = null;
  client.on('error', (error: Error) => {
    if (isAuthError(error.message)) refused = error.message;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    const message = refused ?? (error as Error).message;
    throw new ConfigError([
      {
        path: flag,
        message: isAuthError(message)
          ? `the Redis server at ${redactUrl(url)} refused the URL's credentials (${message}); give its password as redis://:PASSWORD@host:port (or user:PASSWORD@ with Redis ACL users)`
          : `no Redis server answers at ${redactUrl(url)} (${message}); start one (redis-server) or run without ${flag} to use the in-process pool`,
      },
    ]);
  } finally {
    client.disconnect();
  }
}

/** `[exit 3] message`: the exit code travels with a failed job's reason. */
function encodeFailure(failure: JobFailedError): string {
  return `[exit ${failure.exitCode}] ${failure.message}`;
}

function decodeFailure(reason: string | undefined): JobFailedError {
  const m = /^\[exit (\d+)\] ([\s\S]*)$/.exec(reason ?? '');
  return m
    ? new JobFailedError(m[2]!, Number(m[1]))
    : new JobFailedError(reason ?? 'failed on the queue', 1);
}

/**
 * Adds `jobs` to the queue (ids already there are left alone: a sweep re-run adds nothing
 * twice) and waits until each has completed or failed for good, reporting each exactly once
 * through `events`. A job is tried `attempts` times; a config or data error (exit 2 or 3)
 * is not retried. After `signal`, stops waiting (the jobs stay on the queue for the workers).
 */
export async function runOnQueue<
  J extends { readonly id: string; readonly key: string; readonly job: SweepJob },
  R extends SweepJobResult = SweepJobResult,
>(
  url: string,
  name: string,
  jobs: readonly J[],
  events: JobEvents<J, R> & { onWaiting?(counts: Record<string, number>): void },
  signal: AbortSignal,
  options: QueueRunOptions = {},
): Promise<void> {
  const { Queue, Job } = await optional(
    'bullmq',
    options.flag ?? '--queue',
    () => import('bullmq'),
  );
  const queue = new Queue(name, { connection: connectionOf(url) });
  // Connection trouble is reported by the watch below, in one line, not as raw error objects.
  queue.on('error', () => undefined);
  const health = await watchRedis(
    url,
    `queue ${name}`,
    options.lostAfterMs ?? DEFAULT_QUEUE_LOST_AFTER_MS,
    options.log ?? ((line) => process.stderr.write(`${line}\n`)),
  );
  try {
    await untilLost(waitForJobs(queue, Job, jobs, events, signal, options), health.lost, () =>
      queue.close(),
    );
  } finally {
    health.stop();
  }
}

/** Options of {@link runOnQueue}. */
export interface QueueRunOptions {
  /** Tries per job (default 3); a config or data error (exit 2 or 3) is not retried. */
  readonly attempts?: number;
  /** Milliseconds between polls of the jobs' states (default 500). */
  readonly pollMs?: number;
  /** The command-line flag that named the queue, for messages (default `--queue`). */
  readonly flag?: string;
  /**
   * How long a Redis server that stopped answering is waited for before giving up with a
   * {@link QueueLostError} (default {@link DEFAULT_QUEUE_LOST_AFTER_MS}).
   */
  readonly lostAfterMs?: number;
  /** Where the one-line notices about the connection go (default stderr). */
  readonly log?: (line: string) => void;
}

async function waitForJobs<
  J extends { readonly id: string; readonly key: string; readonly job: SweepJob },
  R extends SweepJobResult,
>(
  queue: BullQueue,
  Job: typeof QueueJob,
  jobs: readonly J[],
  events: JobEvents<J, R> & { onWaiting?(counts: Record<string, number>): void },
  signal: AbortSignal,
  options: QueueRunOptions,
): Promise<void> {
  await queue.addBulk(
    jobs.map((item) => ({
      name: item.job.kind,
      data: item.job,
      opts: {
        jobId: item.key,
        attempts: options.attempts ?? 3,
        backoff: { type: 'fixed', delay: 1000 },
        removeOnComplete: false,
        removeOnFail: false,
      },
    })),
  );
  const readJob = async (key: string) =>
    (await Job.fromId(queue, key)) as QueueJob<SweepJob, R> | undefined;
  // Jobs that failed for good in an earlier attempt of this sweep are tried again.
  for (const item of jobs) {
    const job = await readJob(item.key).catch(() => undefined);
    if (job && (await job.getState()) === 'failed') await job.retry('failed');
  }
  const pending = new Map(jobs.map((item) => [item.key, item]));
  const started = new Set<string>();
  while (pending.size > 0 && !signal.aborted) {
    for (const [key, item] of [...pending]) {
      // The state first, then the job: a job read before its state could be one that
      // completed in between, read without its return value.
      const state = await queue.getJobState(key);
      let job: QueueJob<SweepJob, R> | undefined;
      try {
        job = state === 'unknown' ? undefined : await readJob(key);
      } catch (error) {
        // Stored data that is not JSON: whatever wrote it, this job cannot be read back.
        pending.delete(key);
        events.onFail?.(
          item,
          new JobFailedError(
            `job ${key}: its data on the queue is unreadable (${(error as Error).message})`,
            3,
          ),
        );
        continue;
      }
      if (!job) {
        pending.delete(key);
        events.onFail?.(item, new JobFailedError(`job ${key} disappeared from the queue`, 1));
        continue;
      }
      if (
        (state === 'active' || state === 'completed' || state === 'failed') &&
        !started.has(key)
      ) {
        started.add(key);
        events.onStart?.(item);
      }
      if (state === 'completed') {
        pending.delete(key);
        if (job.returnvalue === null || job.returnvalue === undefined)
          events.onFail?.(
            item,
            new JobFailedError(`job ${key} completed without a result on the queue`, 1),
          );
        else events.onDone?.(item, job.returnvalue);
      } else if (state === 'failed') {
        pending.delete(key);
        events.onFail?.(item, decodeFailure(job.failedReason));
      }
    }
    // Up to three Redis calls per pending job and poll: a large sweep polls less often.
    if (pending.size > 0)
      await new Promise((resolveWait) =>
        setTimeout(resolveWait, Math.max(options.pollMs ?? 500, 2 * pending.size)),
      );
  }
  await queue.close();
}

/** Options of a queue worker. */
export interface QueueWorkerOptions {
  /** Jobs at once in this process (each in its own thread). */
  readonly concurrency: number;
  /** How long a job's lock lasts without renewal: a dead worker's job is taken over after it. */
  readonly lockDurationMs: number;
  /** How often this worker looks for stalled jobs of dead workers. */
  readonly stalledIntervalMs: number;
  readonly log: (line: string) => void;
  /** The built module that exports the `jobRunner` (see {@link JobRunner}). */
  readonly runnerModule: URL;
  /**
   * How long a Redis server that stopped answering is waited for before the worker stops its
   * jobs (each writes its checkpoint, as on Ctrl-C) and gives up with a
   * {@link QueueLostError} (default {@link DEFAULT_QUEUE_LOST_AFTER_MS}).
   */
  readonly lostAfterMs?: number;
}

/** The field a job whose stored data is not JSON is given instead, with the parse error. */
const UNREADABLE = '__advrecUnreadableJob';

/**
 * Processes jobs from the queue until `signal`: each job in a worker thread; a config or
 * data error fails the job for good, anything else is retried (up to the job's attempts). A
 * job whose data is not an application job (not JSON, or not of a known kind) fails for good,
 * named by its id. On `signal`, the running jobs are stopped as Ctrl-C stops a run (a
 * checkpoint is written; the retry on another worker resumes from it) and the worker closes;
 * when Redis stops answering for longer than `lostAfterMs`, the same, then a
 * {@link QueueLostError}.
 */
export async function runQueueWorker(
  url: string,
  name: string,
  options: QueueWorkerOptions,
  signal: AbortSignal,
): Promise<{ readonly completed: number; readonly failed: number }> {
  const { Worker, UnrecoverableError } = await optional(
    'bullmq',
    '--queue',
    () => import('bullmq'),
  );
  const runner = await importJobRunner(options.runnerModule);
  let completed = 0;
  let failed = 0;
  const running = new Set<AbortController>();
  // Threads kept between jobs (one per concurrent job): modules load once per thread.
  const idle: JobThread[] = [];
  const threads: JobThread[] = [];
  /** BullMQ's worker, except that a job whose data is not JSON reaches the processor. */
  class CheckedWorker extends Worker<SweepJob, SweepJobResult> {
    protected override createJob(data: JobJson, jobId: string) {
      try {
        return super.createJob(data, jobId);
      } catch (error) {
        const unreadable = { [UNREADABLE]: (error as Error).message };
        return super.createJob({ ...data, data: JSON.stringify(unreadable) }, jobId);
      }
    }
  }
  const unrecoverable = (
    job: { id?: string | undefined },
    what: string,
    failure: JobFailedError,
  ) => {
    failed++;
    const reason = encodeFailure(failure);
    options.log(`job ${job.id} failed: ${what}: ${reason}`);
    return failure.exitCode === 2 || failure.exitCode === 3
      ? new UnrecoverableError(reason)
      : new Error(reason);
  };
  const worker = new CheckedWorker(
    name,
    async (job) => {
      const where = `queue ${name}, job ${job.id}`;
      const raw = job.data as unknown as Record<string, unknown> | null;
      if (raw !== null && typeof raw === 'object' && UNREADABLE in raw)
        throw unrecoverable(
          job,
          'unreadable job',
          new JobFailedError(`${where}: its data is not JSON (${String(raw[UNREADABLE])})`, 3),
        );
      let data: SweepJob;
      try {
        data = runner.checkJob(job.data, where);
      } catch (error) {
        throw unrecoverable(job, 'malformed job', asJobFailure(error, runner));
      }
      const what = runner.describeJob?.(data) ?? `${data.kind} job`;
      options.log(`job ${job.id} started: ${what} (attempt ${job.attemptsMade + 1})`);
      const controller = new AbortController();
      running.add(controller);
      try {
        const thread = idle.pop() ?? new JobThread(options.runnerModule);
        if (!threads.includes(thread)) threads.push(thread);
        let result: SweepJobResult;
        try {
          result = await thread.run(data, controller.signal);
        } finally {
          idle.push(thread);
        }
        completed++;
        options.log(
          `job ${job.id} done: ${what}, ${result.status}, ${result.seconds.toFixed(1)} s`,
        );
        return result;
      } catch (error) {
        throw unrecoverable(job, what, asJobFailure(error, runner));
      } finally {
        running.delete(controller);
      }
    },
    {
      connection: connectionOf(url),
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: 2,
    },
  );
  // Connection trouble is reported by the watch below, in one line; other errors as they come.
  worker.on('error', (error) => {
    if (!/ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Connection is closed/.test(error.message))
      options.log(`queue error: ${error.message}`);
  });
  await worker.waitUntilReady();
  options.log(
    `worker ready on ${redactUrl(url)} (queue ${name}, ${options.concurrency} job(s) at a time, lock ${options.lockDurationMs} ms)`,
  );
  const health = await watchRedis(
    url,
    `worker of queue ${name}`,
    options.lostAfterMs ?? DEFAULT_QUEUE_LOST_AFTER_MS,
    options.log,
  );
  const stopped = new Promise<void>((resolveStop) => {
    if (signal.aborted) resolveStop();
    else signal.addEventListener('abort', () => resolveStop(), { once: true });
  });
  let lost: unknown = null;
  await Promise.race([stopped, health.lost]).catch((error: unknown) => (lost = error));
  health.stop();
  for (const controller of running) controller.abort();
  // With the server gone, a graceful close would wait for it: the running jobs are stopped
  // (their checkpoints written) before the threads close, and the close itself is bounded.
  if (lost !== null) {
    // The stopped jobs end after their current step with a checkpoint (a minute at most is
    // waited for them), then the worker is closed without waiting for the server.
    const deadline = Date.now() + 60_000;
    while (running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await closeWithin(() => worker.close(true));
    await Promise.all(threads.map((thread) => thread.close()));
    throw lost;
  }
  await worker.close();
  await Promise.all(threads.map((thread) => thread.close()));
  return { completed, failed };
}
