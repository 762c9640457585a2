/**
 * The in-process worker pool: the embedded default, no server. One worker runs the jobs one
 * after another in this thread; more run each job in its own worker thread of this process,
 * that many at a time.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describeFailure } from '../cli.js';
import { exitCodeOf } from '../errors.js';
import { JobFailedError, runJob } from './jobs.js';
import type { JobResult, WorkerJob } from './jobs.js';

/** What a pool or a queue tells its caller as jobs move. */
export interface JobEvents<J extends { readonly id: string }> {
  onStart?(job: J): void;
  onDone?(job: J, result: JobResult): void;
  onFail?(job: J, error: JobFailedError): void;
}

/**
 * The worker-thread entry: `job-thread.js` beside this module once built. Under a TypeScript
 * runner (the tests import the sources) threads cannot load `.ts`, so the built file in
 * `dist/` is used; it must have been built.
 */
function threadEntry(): URL {
  const here = import.meta.url;
  const entry = here.endsWith('.ts')
    ? new URL('../../dist/sweep/job-thread.js', here)
    : new URL('./job-thread.js', here);
  if (!existsSync(fileURLToPath(entry)))
    throw new Error(
      `the worker-thread entry ${fileURLToPath(entry)} is missing: build the CLI (pnpm --filter advrec build)`,
    );
  return entry;
}

/** Runs one job in a new worker thread of this process; `signal` stops it like Ctrl-C. */
export function runInThread(job: WorkerJob, signal?: AbortSignal): Promise<JobResult> {
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(threadEntry(), { workerData: { job } });
    let settled = false;
    const onAbort = (): void => worker.postMessage('abort');
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = (action: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      action();
      // The job is over: stop whatever the thread still holds (idle kernel threads).
      void worker.terminate();
    };
    worker.on(
      'message',
      (
        message: { ok: true; result: JobResult } | { ok: false; message: string; exitCode: number },
      ) =>
        settle(() =>
          message.ok
            ? resolvePromise(message.result)
            : reject(new JobFailedError(message.message, message.exitCode)),
        ),
    );
    worker.on('error', (error) => settle(() => reject(new JobFailedError(error.message, 1))));
    worker.on('exit', (code) =>
      settle(() => reject(new JobFailedError(`worker thread exited with ${code}`, 1))),
    );
  });
}

/**
 * Runs `jobs` on `workers` workers of this process and reports each through `events`. A
 * failed job is reported and the others go on; resolves when every job has ended (or, after
 * `signal`, when the running ones have stopped and no new one is started).
 */
export async function runLocalPool<J extends { readonly id: string; readonly job: WorkerJob }>(
  jobs: readonly J[],
  workers: number,
  events: JobEvents<J>,
  signal: AbortSignal,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < jobs.length && !signal.aborted) {
      const item = jobs[next++]!;
      events.onStart?.(item);
      try {
        const result =
          workers === 1 ? await runJob(item.job, signal) : await runInThread(item.job, signal);
        events.onDone?.(item, result);
      } catch (error) {
        const failure =
          error instanceof JobFailedError
            ? error
            : new JobFailedError(
                describeFailure(error).line.replace(/^advrec: /, ''),
                exitCodeOf(error),
              );
        events.onFail?.(item, failure);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(workers, jobs.length)) }, lane));
}
