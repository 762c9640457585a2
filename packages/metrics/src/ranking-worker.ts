/**
 * A worker thread of the full-ranking pool ({@link rankJobInWorkers}): ranks the chunks of
 * users `[from, to)` it is sent, on the job's shared buffers, and answers each with `done`.
 * @internal
 */
import { parentPort, workerData } from 'node:worker_threads';
import { workerErrorMessage } from '@advrec/models/workers';
import { makeRankingKernel } from './kernel.js';
import { runRange } from './worker-pool.js';
import type { SharedRankingJob } from './worker-pool.js';

const job = workerData as SharedRankingJob;
const kernel = makeRankingKernel();
parentPort!.on('message', ({ from, to }: { from: number; to: number }) => {
  try {
    runRange(kernel, job, from, to);
    parentPort!.postMessage({ done: true });
  } catch (error) {
    parentPort!.postMessage(workerErrorMessage(error));
  }
});
parentPort!.postMessage({ ready: true });
