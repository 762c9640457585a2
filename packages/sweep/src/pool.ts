/**
 * The in-process worker pool: the embedded default, no server. One worker runs the jobs one
 * after another in this thread; more run them in that many worker threads of this process,
 * each thread kept for all the jobs it runs.
 */
import { Worker } from 'node:worker_threads';
import { JobFailedError, asJobFailure, importJobRunner } from './jobs.js';
import type { SweepJob, SweepJobResult } from './jobs.js';

/** What a pool or a queue tells its caller as jobs move. */
export interface JobEvents<
  J extends { readonly id: string },
  R extends SweepJobResult = SweepJobResult,
> {
  onStart?(job: J): void;
  onDone?(job: J, result: R): void;
  onFail?(job: J, error: JobFailedError): void;
}

/**
 * The worker-thread entry: `job-thread.js` beside this module once built (under a TypeScript
 * runner, this package's own tests, the built one in `dist/`).
 */
function threadEntry(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts')
    ? new URL('../dist/job-thread.js', here)
    : new URL('./job-thread.js', here);
}

type ThreadAnswer =
  | { ok: true; result: SweepJobResult }
  | { ok: false; message: string; exitCode: number; ending?: boolean };

/**
 * A worker thread of this process that runs jobs one at a time and is kept between them
 * (modules load once per thread). A thread that dies mid-job fails that job and is replaced
 * by the next {@link JobThread.run}.
 */
export class JobThread {
  private worker: Worker | null = null;
  private current: {
    resolve: (r: SweepJobResult) => void;
    reject: (e: JobFailedError) => void;
  } | null = null;

  /** `runnerModule`: the built module whose `jobRunner` the thread runs jobs with. */
  constructor(private readonly runnerModule: URL) {}

  private spawn(): Worker {
    const worker = new Worker(threadEntry(), {
      workerData: { runnerModule: this.runnerModule.href },
    });
    // Only the thread in use fails the running job: a thread that said it is ending (after
    // an error outside its job) has been replaced already, and its exit says nothing new.
    const fail = (error: JobFailedError): void => {
      if (this.worker !== worker) return;
      this.worker = null;
      const current = this.current;
      this.current = null;
      current?.reject(error);
    };
    worker.on('message', (answer: ThreadAnswer) => {
      if (this.worker !== worker) return;
      if (!answer.ok && answer.ending) this.worker = null;
      const current = this.current;
      this.current = null;
      if (!current) return;
      if (answer.ok) current.resolve(answer.result);
      else current.reject(new JobFailedError(answer.message, answer.exitCode));
    });
    worker.on('error', (error) => fail(new JobFailedError(error.message, 1)));
    worker.on('exit', (code) => fail(new JobFailedError(`worker thread exited with ${code}`, 1)));
    return worker;
  }

  /** Runs one job in the thread; `signal` stops it like Ctrl-C. */
  run<R extends SweepJobResult = SweepJobResult>(job: SweepJob, signal?: AbortSignal): Promise<R> {
    if (this.current) throw new Error('JobThread.run: a job is already running');
    this.worker ??= this.spawn();
    const worker = this.worker;
    return new Promise<R>((resolvePromise, reject) => {
      const onAbort = (): void => worker.postMessage({ type: 'abort' });
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      this.current = {
        resolve: (result) => {
          done();
          resolvePromise(result as R);
        },
        reject: (error) => {
          done();
          reject(error);
        },
      };
      worker.postMessage({ type: 'run', job });
    });
  }

  /** Stops the thread (and whatever it still holds). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }
}

/** Options of {@link runLocalPool}. */
export interface PoolOptions<J extends { readonly id: string }, R extends SweepJobResult> {
  /** Workers (1: the jobs run one after another in this thread). */
  readonly workers: number;
  /** The built module that exports the `jobRunner` (see {@link JobRunner}). */
  readonly runnerModule: URL;
  readonly events: JobEvents<J, R>;
  readonly signal: AbortSignal;
}

/**
 * Runs `jobs` on `workers` workers of this process and reports each through `events`. A
 * failed job is reported and the others go on; resolves when every job has ended (or, after
 * `signal`, when the running ones have stopped and no new one is started).
 */
export async function runLocalPool<
  J extends { readonly id: string; readonly job: SweepJob },
  R extends SweepJobResult = SweepJobResult,
>(jobs: readonly J[], options: PoolOptions<J, R>): Promise<void> {
  const { workers, events, signal } = options;
  const runner = await importJobRunner(options.runnerModule);
  let next = 0;
  const lane = async (): Promise<void> => {
    const thread = workers === 1 ? null : new JobThread(options.runnerModule);
    try {
      await runLane(thread);
    } finally {
      await thread?.close();
    }
  };
  const runLane = async (thread: JobThread | null): Promise<void> => {
    while (next < jobs.length && !signal.aborted) {
      const item = jobs[next++]!;
      events.onStart?.(item);
      try {
        const result =
          thread === null
            ? ((await runner.runJob(runner.checkJob(item.job, `job ${item.id}`), signal)) as R)
            : await thread.run<R>(item.job, signal);
        events.onDone?.(item, result);
      } catch (error) {
        events.onFail?.(item, asJobFailure(error, runner));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(workers, jobs.length)) }, lane));
}
