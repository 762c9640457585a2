/**
 * A worker thread of the per-triple SGD engine: instantiates the kernel on the shared memory,
 * then runs its share of every epoch the calling thread announces on `control` (word 0: the
 * epoch counter, 1: shares done, 2: stop, 3: failed, 4: the epoch).
 * @internal
 */
import { parentPort, workerData } from 'node:worker_threads';
import { workerErrorMessage } from '@advrec/models/workers';
import type { WasmApi } from './mf-kernel.js';
import { runSgdShare } from './sgd-kernel.js';
import type { SgdJob, SgdKernel } from './sgd-kernel.js';

const { job, thread } = workerData as { job: SgdJob; thread: number };
const control = job.control;
const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
try {
  const kernel = new api.Instance(job.module, { env: { memory: job.memory } })
    .exports as unknown as SgdKernel;
  parentPort!.postMessage({ ready: true });
  let seen = 0;
  for (;;) {
    while (Atomics.load(control, 0) === seen) {
      if (Atomics.load(control, 2) === 1) process.exit(0);
      Atomics.wait(control, 0, seen, 1000);
    }
    seen = Atomics.load(control, 0);
    if (Atomics.load(control, 2) === 1) process.exit(0);
    runSgdShare(kernel, job.memory, job, Atomics.load(control, 4), thread);
    Atomics.add(control, 1, 1);
    Atomics.notify(control, 1);
  }
} catch (error) {
  Atomics.store(control, 3, 1);
  Atomics.notify(control, 1);
  parentPort!.postMessage(workerErrorMessage(error));
}
