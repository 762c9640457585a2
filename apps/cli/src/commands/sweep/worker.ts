import type { CommandContext } from '../../run-folder/context.js';
import { emit } from '../../run-folder/context.js';
import { DEFAULT_QUEUE_NAME, checkQueue, runQueueWorker } from '@advrec/sweep';
import { sweepJobRunnerModule } from '../../sweep/jobs.js';

/** Options of `advrec worker`. */
export interface WorkerOptions {
  readonly queue: string;
  readonly queueName?: string;
  readonly concurrency?: number;
  readonly lockDuration?: number;
  readonly stalledInterval?: number;
  /** Seconds a Redis server that stopped answering is waited for (default 30). */
  readonly queueWait?: number;
}

/**
 * `advrec worker`: runs jobs from a Redis queue (sweep runs, feature shards) until Ctrl-C or
 * SIGTERM; then the running jobs stop with a checkpoint and go back to the queue.
 */
export async function workerCommand(
  options: WorkerOptions,
  context: CommandContext,
): Promise<number> {
  await checkQueue(options.queue);
  const name = options.queueName ?? DEFAULT_QUEUE_NAME;
  const outcome = await runQueueWorker(
    options.queue,
    name,
    {
      concurrency: options.concurrency ?? 1,
      lockDurationMs: options.lockDuration ?? 30_000,
      stalledIntervalMs: options.stalledInterval ?? 30_000,
      // Always printed (even with --quiet): a worker's log is its only output.
      log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
      runnerModule: sweepJobRunnerModule(),
      ...(options.queueWait !== undefined ? { lostAfterMs: options.queueWait * 1000 } : {}),
    },
    context.signal,
  );
  emit(
    context,
    outcome,
    () => `worker stopped: ${outcome.completed} jobs done, ${outcome.failed} failed`,
  );
  return 0;
}
