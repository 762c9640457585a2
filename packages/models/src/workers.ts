/**
 * Starting kernel worker threads. Also exported as `@advrec/models/workers`, which imports
 * nothing else: a worker's entry module loads it without the rest of the package.
 */
import { Worker } from 'node:worker_threads';

/**
 * A module of a package as worker threads can load it: `file` beside `here` once built, or in
 * the package's `dist/` when `here` is a TypeScript source (a package's own tests).
 */
export function builtModule(here: string, file: string): URL {
  return here.endsWith('.ts') ? new URL(`../dist/${file}`, here) : new URL(`./${file}`, here);
}

/**
 * Starts `count` worker threads running the built entry module `entry` (see
 * {@link builtModule}), worker `w` getting `workerData(w)`, and resolves once each has posted
 * `{ ready: true }` (rejects with the first start-up error, after stopping the others). Later
 * `{ error }` messages and worker errors go to `onError`. The one way advrec's kernels start
 * their threads: the fused MF engines, the per-triple SGD engine and the ranking pool.
 * @internal
 */
export async function startKernelWorkers(
  entry: URL,
  count: number,
  workerData: (worker: number) => unknown,
  onError: (message: string) => void,
): Promise<Worker[]> {
  const workers: Worker[] = [];
  const ready: Promise<void>[] = [];
  for (let w = 0; w < count; w++) {
    const worker = new Worker(entry, { workerData: workerData(w) });
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
  try {
    await Promise.all(ready);
  } catch (error) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw error;
  }
  return workers;
}

/** The message a kernel worker posts for an error it caught (its stack when it has one). @internal */
export function workerErrorMessage(error: unknown): { readonly error: string } {
  return { error: String((error instanceof Error && error.stack) || error) };
}
