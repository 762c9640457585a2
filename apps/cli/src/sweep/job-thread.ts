/**
 * Entry of a worker thread that runs one job ({@link runJob}) and posts its result; the
 * message `abort` stops it as Ctrl-C stops a command (after the current epoch, with a
 * checkpoint).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { exitCodeOf } from '../errors.js';
import { asWorkerJob, runJob } from './jobs.js';

const controller = new AbortController();
parentPort?.on('message', (message: unknown) => {
  if (message === 'abort') controller.abort();
});
try {
  const job = asWorkerJob((workerData as { job: unknown }).job, 'worker thread data');
  const result = await runJob(job, controller.signal);
  parentPort?.postMessage({ ok: true, result });
} catch (error) {
  const exitCode =
    typeof (error as { exitCode?: unknown }).exitCode === 'number'
      ? (error as { exitCode: number }).exitCode
      : exitCodeOf(error);
  parentPort?.postMessage({
    ok: false,
    message: (error as Error | null)?.message ?? String(error),
    exitCode,
  });
}
parentPort?.close();
