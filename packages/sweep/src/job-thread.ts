/**
 * Entry of a worker thread that runs jobs one at a time, for as long as its pool keeps it:
 * the runner module (`workerData.runnerModule`, its `jobRunner`) and what it loads (training
 * engines, onnxruntime) load once per thread, not once per job. Messages: `{ type: 'run', job }`
 * answers `{ ok, result | message, exitCode }`; `{ type: 'abort' }` stops the running job as
 * Ctrl-C stops a command (after the current epoch, with a checkpoint).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { asJobFailure, importJobRunner } from './jobs.js';

const runner = importJobRunner((workerData as { runnerModule: string }).runnerModule);
let controller: AbortController | null = null;
parentPort?.on('message', (message: { type: 'run'; job: unknown } | { type: 'abort' }) => {
  if (message.type === 'abort') {
    controller?.abort();
    return;
  }
  controller = new AbortController();
  const signal = controller.signal;
  void (async () => {
    let jobRunner: Awaited<typeof runner> | null = null;
    try {
      jobRunner = await runner;
      const job = jobRunner.checkJob(message.job, 'worker thread message');
      const result = await jobRunner.runJob(job, signal);
      parentPort?.postMessage({ ok: true, result });
    } catch (error) {
      const failure = jobRunner
        ? asJobFailure(error, jobRunner)
        : { message: (error as Error).message, exitCode: 1 };
      parentPort?.postMessage({ ok: false, message: failure.message, exitCode: failure.exitCode });
    } finally {
      controller = null;
    }
  })();
});
