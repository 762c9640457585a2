/**
 * Entry of a worker thread that runs jobs ({@link runJob}) one at a time, for as long as its
 * pool keeps it: the modules (training engines, onnxruntime) load once per thread, not once
 * per job. Messages: `{ type: 'run', job }` answers `{ ok, result | message, exitCode }`;
 * `{ type: 'abort' }` stops the running job as Ctrl-C stops a command (after the current
 * epoch, with a checkpoint).
 */
import { parentPort } from 'node:worker_threads';
import { asJobFailure, asWorkerJob, runJob } from './jobs.js';

let controller: AbortController | null = null;
parentPort?.on('message', (message: { type: 'run'; job: unknown } | { type: 'abort' }) => {
  if (message.type === 'abort') {
    controller?.abort();
    return;
  }
  controller = new AbortController();
  const signal = controller.signal;
  void (async () => {
    try {
      const job = asWorkerJob(message.job, 'worker thread message');
      const result = await runJob(job, signal);
      parentPort?.postMessage({ ok: true, result });
    } catch (error) {
      const failure = asJobFailure(error);
      parentPort?.postMessage({ ok: false, message: failure.message, exitCode: failure.exitCode });
    } finally {
      controller = null;
    }
  })();
});
