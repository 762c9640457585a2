/**
 * A worker thread of the fused MF engine: waits for ring slots the calling thread fills and
 * runs their batches with {@link createMfKernel}, alone on every `threads`-th batch (hogwild)
 * or sharing each batch's chunks with the other workers.
 * @internal
 */
import { parentPort, workerData } from 'node:worker_threads';
import { workerErrorMessage } from '@advrec/models/workers';
import { SLOT_FIELDS, createMfKernel } from './mf-kernel.js';
import type { MfKernelWorkerData } from './mf-kernel.js';

const { shared, params, worker, threads, mode } = workerData as MfKernelWorkerData;
const hogwild = mode === 'hogwild';
const meta = shared.slotMeta;
const control = shared.control;
try {
  const kernel = createMfKernel(shared, params, hogwild ? worker : 0);
  const sharing = hogwild ? 1 : threads;
  parentPort!.postMessage({ ready: true });
  const stride = hogwild ? threads : 1;
  for (let n = hogwild ? worker : 0; ; n += stride) {
    const slot = n % shared.ringSlots;
    const at = slot * SLOT_FIELDS;
    let spins = 0;
    while (Atomics.load(meta, at) !== n + 1) {
      if (Atomics.load(control, 2) === 1) process.exit(0);
      if (++spins > 4000) Atomics.wait(meta, at, Atomics.load(meta, at), 20);
    }
    kernel.runBatch(slot, sharing);
    // The last worker through the batch frees its slot.
    if (hogwild || Atomics.add(meta, at + 8, 1) === sharing - 1) {
      Atomics.store(meta, at, 0);
      Atomics.notify(meta, at);
    }
  }
} catch (error) {
  Atomics.store(control, 3, 1);
  Atomics.notify(meta, 0);
  parentPort!.postMessage(workerErrorMessage(error));
}
