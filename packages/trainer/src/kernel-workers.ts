import { Worker } from 'node:worker_threads';

/**
 * Starts `count` worker threads running `source` (eval'd CommonJS), worker `w` getting
 * `workerData(w)`, and resolves once each has posted `{ ready: true }` (rejects with the
 * first start-up error). Later `{ error }` messages and worker errors go to `onError`. The
 * fused engines' shared start-up. @internal
 */
export async function startKernelWorkers(
  source: string,
  count: number,
  workerData: (worker: number) => unknown,
  onError: (message: string) => void,
): Promise<Worker[]> {
  const workers: Worker[] = [];
  const ready: Promise<void>[] = [];
  for (let w = 0; w < count; w++) {
    const worker = new Worker(source, { eval: true, workerData: workerData(w) });
    ready.push(
      new Promise((resolve, reject) => {
        worker.once('message', (m: { ready?: boolean; error?: string }) =>
          m.ready ? resolve() : reject(new Error(m.error)),
        );
        worker.once('error', reject);
      }),
    );
    worker.on('message', (m: { error?: string }) => {
      if (m.error) onError(m.error);
    });
    worker.on('error', (e) => onError(String(e.stack ?? e)));
    workers.push(worker);
  }
  await Promise.all(ready);
  return workers;
}
