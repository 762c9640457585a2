/**
 * What a sweep hands to workers and how a worker runs it: a job is plain JSON (a queue stores
 * it, a thread receives a copy); a {@link JobRunner} knows the job kinds of an application
 * (the `advrec` CLI's: train one run, extract one feature shard) and runs one.
 */

/** A unit of work: plain JSON with a `kind`. */
export interface SweepJob {
  readonly kind: string;
}

/** What a finished job reports (small: a queue stores it). */
export interface SweepJobResult {
  readonly kind: string;
  readonly status: string;
  readonly seconds: number;
}

/** A job's failure, carried across threads and queues with the exit code it would give. */
export class JobFailedError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = 'JobFailedError';
    this.exitCode = exitCode;
  }
}

/**
 * Runs the jobs of an application. The module whose URL a pool or a queue worker is given
 * (`runnerModule`) exports one as `jobRunner`: worker threads import it, so it must be a
 * built JavaScript module.
 */
export interface JobRunner<
  J extends SweepJob = SweepJob,
  R extends SweepJobResult = SweepJobResult,
> {
  /** Runs one job in this thread; `signal` stops it as Ctrl-C stops a command. */
  runJob(job: J, signal: AbortSignal): Promise<R>;
  /** The job a value received from a queue or a thread is, or an error naming `where`. */
  checkJob(value: unknown, where: string): J;
  /** One line and the exit code for an error of a job (2 and 3 are not retried). */
  describeFailure(error: unknown): { readonly message: string; readonly exitCode: number };
  /** How logs name a job (`run lr=0.1_seed=1`). */
  describeJob?(job: J): string;
}

/** Any error of a job as a {@link JobFailedError} (a JobFailedError as it is). */
export function asJobFailure(
  error: unknown,
  runner: Pick<JobRunner, 'describeFailure'>,
): JobFailedError {
  if (error instanceof JobFailedError) return error;
  const { message, exitCode } = runner.describeFailure(error);
  return new JobFailedError(message, exitCode);
}

/** The `jobRunner` export of a runner module (a clear error when it has none). */
export async function importJobRunner(runnerModule: URL | string): Promise<JobRunner> {
  const module = (await import(String(runnerModule))) as { jobRunner?: JobRunner };
  if (!module.jobRunner || typeof module.jobRunner.runJob !== 'function')
    throw new TypeError(
      `${String(runnerModule)} exports no jobRunner (runJob, checkJob, describeFailure)`,
    );
  return module.jobRunner;
}
