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
import { ConfigError } from '@advrec/data';
import type { Job as QueueJob } from 'bullmq';
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
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new ConfigError([
      {
        path: flag,
        message: `no Redis server answers at ${url} (${(error as Error).message}); start one (redis-server) or run without ${flag} to use the in-process pool`,
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
  options: { readonly attempts?: number; readonly pollMs?: number; readonly flag?: string } = {},
): Promise<void> {
  const { Queue, Job } = await optional(
    'bullmq',
    options.flag ?? '--queue',
    () => import('bullmq'),
  );
  const queue = new Queue(name, { connection: connectionOf(url) });
  try {
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
    // Jobs that failed for good in an earlier attempt of this sweep are tried again.
    for (const item of jobs) {
      const job = await Job.fromId(queue, item.key);
      if (job && (await job.getState()) === 'failed') await job.retry('failed');
    }
    const pending = new Map(jobs.map((item) => [item.key, item]));
    const started = new Set<string>();
    while (pending.size > 0 && !signal.aborted) {
      for (const [key, item] of [...pending]) {
        // The state first, then the job: a job read before its state could be one that
        // completed in between, read without its return value.
        const state = await queue.getJobState(key);
        const job =
          state === 'unknown'
            ? undefined
            : ((await Job.fromId(queue, key)) as QueueJob<SweepJob, R> | undefined);
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
  } finally {
    await queue.close();
  }
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
}

/**
 * Processes jobs from the queue until `signal`: each job in a worker thread; a config or
 * data error fails the job for good, anything else is retried (up to the job's attempts).
 * On `signal`, the running jobs are stopped as Ctrl-C stops a run (a checkpoint is written;
 * the retry on another worker resumes from it) and the worker closes.
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
  const worker = new Worker<SweepJob, SweepJobResult>(
    name,
    async (job) => {
      const data = runner.checkJob(job.data, `queue ${name}, job ${job.id}`);
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
        failed++;
        const failure = asJobFailure(error, runner);
        const reason = encodeFailure(failure);
        options.log(`job ${job.id} failed: ${what}: ${reason}`);
        throw failure.exitCode === 2 || failure.exitCode === 3
          ? new UnrecoverableError(reason)
          : new Error(reason);
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
  worker.on('error', (error) => options.log(`queue error: ${error.message}`));
  await worker.waitUntilReady();
  options.log(
    `worker ready on ${url} (queue ${name}, ${options.concurrency} job(s) at a time, lock ${options.lockDurationMs} ms)`,
  );
  await new Promise<void>((resolveStop) => {
    if (signal.aborted) resolveStop();
    else signal.addEventListener('abort', () => resolveStop(), { once: true });
  });
  for (const controller of running) controller.abort();
  await worker.close();
  await Promise.all(threads.map((thread) => thread.close()));
  return { completed, failed };
}
