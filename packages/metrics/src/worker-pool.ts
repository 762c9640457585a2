// The light subpath: the ranking workers load this module too.
import { builtModule, startKernelWorkers } from '@advrec/models/workers';
import { makeRankingKernel } from './kernel.js';

/** Shared inputs and outputs of a full-ranking run over factorized scores. @internal */
export interface SharedRankingJob {
  readonly users: Int32Array;
  readonly relevantIndptr: Int32Array;
  readonly relevantIndices: Int32Array;
  readonly excludedIndptr: Int32Array;
  readonly excludedIndices: Int32Array;
  readonly userFactors: Float32Array;
  readonly itemFactors: Float32Array;
  readonly itemBias: Float32Array | null;
  readonly dimension: number;
  readonly numItems: number;
  readonly maxCutoff: number;
  readonly fullRanks: boolean;
  /** users.length x maxCutoff. */
  readonly top: Int32Array;
  /** Parallel to the evaluated users' relevant entries: offset of user b is `positionOffsets[b]`. */
  readonly positions: Int32Array;
  readonly positionOffsets: Int32Array;
  /** Candidates per evaluated user, or -(item + 1) for a non-finite score. */
  readonly candidates: Int32Array;
}

/** Copies a typed array into shared memory (no copy when it already is shared). */
export function shared<T extends Int32Array | Float32Array>(array: T): T {
  if (array.buffer instanceof SharedArrayBuffer) return array;
  const buffer = new SharedArrayBuffer(array.byteLength);
  const copy = new (array.constructor as { new (b: SharedArrayBuffer): T })(buffer);
  copy.set(array);
  return copy;
}

/** Allocates a zeroed typed array on shared memory. */
export function sharedInt32(length: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Math.max(4, length * 4)), 0, length);
}

/**
 * Ranks users `[from, to)` of a job on the calling thread: canonical scores from the
 * factors, then the ranking kernel, as the workers do (`ranking-worker.ts`).
 * @internal
 */
export function rankJobRange(job: SharedRankingJob, from: number, to: number): void {
  const kernel = makeRankingKernel();
  runRange(kernel, job, from, to);
}

/** {@link rankJobRange} with a kernel the caller keeps (a worker's). @internal */
export function runRange(
  kernel: ReturnType<typeof makeRankingKernel>,
  job: SharedRankingJob,
  from: number,
  to: number,
): void {
  const group = 4;
  const rows = new Float64Array(group * job.numItems);
  for (let start = from; start < to; start += group) {
    const members = job.users.subarray(start, Math.min(to, start + group));
    kernel.scoreRows(
      rows,
      members,
      job.userFactors,
      job.itemFactors,
      job.itemBias,
      job.dimension,
      job.numItems,
    );
    for (let t = 0; t < members.length; t++) {
      const b = start + t;
      const u = members[t]!;
      job.candidates[b] = kernel.rankRow(
        {
          row: rows.subarray(t * job.numItems, (t + 1) * job.numItems),
          relevant: job.relevantIndices.subarray(
            job.relevantIndptr[u]!,
            job.relevantIndptr[u + 1]!,
          ),
          excluded: job.excludedIndices.subarray(
            job.excludedIndptr[u]!,
            job.excludedIndptr[u + 1]!,
          ),
          maxCutoff: job.maxCutoff,
          fullRanks: job.fullRanks,
        },
        {
          top: job.top,
          topOffset: b * job.maxCutoff,
          positions: job.positions,
          positionOffset: job.positionOffsets[b]!,
        },
      );
    }
  }
}

/**
 * Runs a job over `threads` worker threads, handing out chunks of users as workers free
 * up. Each user's result depends only on that user, so any thread count and any chunk
 * size give the same numbers.
 * @internal
 */
export async function rankJobInWorkers(
  job: SharedRankingJob,
  threads: number,
  chunk = 128,
): Promise<void> {
  const total = job.users.length;
  const workers = await startKernelWorkers(
    builtModule(import.meta.url, 'ranking-worker.js'),
    Math.max(1, Math.min(threads, Math.ceil(total / chunk))),
    () => job,
    // A chunk's error rejects its worker's promise below.
    () => undefined,
  );
  let next = 0;
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const feed = (): void => {
              if (next >= total) {
                resolve();
                return;
              }
              const from = next;
              next = Math.min(total, next + chunk);
              worker.postMessage({ from, to: next });
            };
            worker.on('message', (message: { done?: boolean; error?: string }) => {
              if (message.error) reject(new Error(`ranking worker failed: ${message.error}`));
              else feed();
            });
            worker.on('error', reject);
            feed();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
