/**
 * Entry of a worker thread that runs jobs one at a time, for as long as its pool keeps it:
 * the runner module (`workerData.runnerModule`, its `jobRunner`) and what it loads (training
 * engines, onnxruntime) load once per thread, not once per job. Messages: `{ type: 'run', job }`
 * answers `{ ok, result | message, exitCode }`; `{ type: 'abort' }` stops the running job as
 * Ctrl-C stops a command (after the current epoch, with a checkpoint).
 *
 * An error thrown outside the job's own promise (a plugin's timer, an unhandled rejection)
 * fails the running job with the runner's description of it, here where the runner knows
 * what the job loaded (a plugin is named, exit 2, and not retried), then ends the thread:
 * its state can no longer be trusted, and the pool starts a fresh one for the next job.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { asJobFailure, importJobRunner } from './jobs.js';
import type { JobRunner } from './jobs.js';

const runner = importJobRunner((workerData as { runnerModule: string }).runnerModule);
let loaded: JobRunner | null = null;
let controller: AbortController | null = null;
let answered = false;

function fail(error: unknown, ending = false): void {
  const failure = loaded
    ? asJobFailure(error, loaded)
    : { message: (error as Error | null)?.message ?? String(error), exitCode: 1 };
  parentPort?.postMessage({
    ok: false,
    message: failure.message,
    exitCode: failure.exitCode,
    ...(ending ? { ending: true } : {}),
  });
}

function outsideTheJob(error: unknown): void {
  if (controller !== null && !answered) {
    answered = true;
    fail(error, true);
  }
  // The pool replaces this thread on the message above (sent before the exit).
  process.exit(1);
}
process.on('uncaughtException', outsideTheJob);
process.on('unhandledRejection', outsideTheJob);

parentPort?.on('message', (message: { type: 'run'; job: unknown } | { type: 'abort' }) => {
  if (message.type === 'abort') {
    controller?.abort();
    return;
  }
  controller = new AbortController();
  answered = false;
  const signal = controller.signal;
  void (async () => {
    try {
      loaded = await runner;
      const job = loaded.checkJob(message.job, 'worker thread message');
      const result = await loaded.runJob(job, signal);
      if (!answered) parentPort?.postMessage({ ok: true, result });
    } catch (error) {
      if (!answered) fail(error);
    } finally {
      answered = true;
      controller = null;
    }
  })();
});
