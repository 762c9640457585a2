/**
 * The CLI's job runner (`@advrec/sweep`'s `JobRunner`, exported as `jobRunner`: pool and queue
 * worker threads import this module): the jobs a sweep or a sharded extraction hands to
 * workers, and how one is run. Jobs are idempotent: a run folder completed by an earlier
 * attempt is read, not recomputed; a run killed after a resumable checkpoint continues from
 * it; a feature shard already extracted is kept when its record (identity and SHA-256 of its
 * files) says it is the shard asked for, unchanged, and extracted again otherwise.
 */
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError, DataFormatError, writeFileAtomic } from '@advrec/data';
import type { ImageEntry } from '@advrec/features';
import type { CommandContext } from '../run-folder/context.js';
import { describeFailure } from '../errors.js';
import { JobFailedError } from '@advrec/sweep';
import type { JobRunner } from '@advrec/sweep';
import { Progress } from '../progress.js';
import { toJson } from '../run-folder/runs.js';

/** Train one run of a sweep into its run folder (`advrec train` with the run's config). */
export interface TrainJob {
  readonly kind: 'train';
  /** The sweep folder (its `completions.jsonl` records every training that finished). */
  readonly sweep: string;
  readonly runId: string;
  /** The run folder, absolute. */
  readonly folder: string;
  /** The run's raw config (paths absolute). */
  readonly config: Readonly<Record<string, unknown>>;
}

/** Extract the features of one shard of an image list into its own float32 `.npy`. */
export interface FeatureShardJob {
  readonly kind: 'features-shard';
  readonly shard: number;
  readonly output: string;
  readonly model: string;
  readonly images: readonly ImageEntry[];
  readonly tensor?: string;
  readonly inputName?: string;
  readonly batchSize: number;
  readonly threads?: number;
}

/** A unit of work for a worker. */
export type WorkerJob = TrainJob | FeatureShardJob;

/** What a finished job reports (small: a queue stores it). */
export type JobResult =
  | {
      readonly kind: 'train';
      readonly runId: string;
      /** `trained` from scratch, `resumed` from a killed attempt's checkpoint, `reused` a finished folder. */
      readonly status: 'trained' | 'resumed' | 'reused';
      readonly seconds: number;
    }
  | {
      readonly kind: 'features-shard';
      readonly shard: number;
      readonly status: 'extracted' | 'reused';
      readonly rows: number;
      readonly seconds: number;
    };

function silentContext(signal: AbortSignal): CommandContext {
  const sink = { write: () => true } as unknown as NodeJS.WritableStream;
  return { stdout: sink, progress: new Progress(sink, { quiet: true }), json: false, signal };
}

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
}

/** Whether a run folder holds a finished run of exactly this resolved config. */
export async function finishedRun(folder: string, resolvedJson: string): Promise<boolean> {
  try {
    const run = (await readJson(join(folder, 'run.json'))) as { status?: string };
    const config = await readFile(join(folder, 'config.json'), 'utf8');
    return (
      run.status === 'done' &&
      config.trim() === resolvedJson.trim() &&
      // A pairwise run's test metrics, or a sequential run's results.
      (existsSync(join(folder, 'metrics.json')) || existsSync(join(folder, 'results.json')))
    );
  } catch {
    return false;
  }
}

/**
 * Runs a job in this thread. A train job whose folder already holds the finished run returns
 * `reused`; one whose folder holds a resumable checkpoint of the same config continues from it
 * (`advrec train --resume`: the same result as an uninterrupted run); otherwise it trains from
 * scratch into the folder (replacing what a killed attempt left). Every training that
 * finishes appends one line to the sweep's `completions.jsonl`.
 */
export async function runJob(
  job: WorkerJob,
  signal: AbortSignal = new AbortController().signal,
): Promise<JobResult> {
  const started = performance.now();
  const seconds = (): number => (performance.now() - started) / 1000;
  if (job.kind === 'features-shard') return runFeatureShard(job, signal, seconds);
  const { trainCommand, runConfigFromOptions, isSequentialRun } =
    await import('../commands/train/run.js');
  const resolved = toJson(
    (await isSequentialRun({ ...job.config }))
      ? await (
          await import('../run-folder/sequential.js')
        ).resolveSequentialRun({ ...job.config }, { adversarialEpochs: 0 })
      : await runConfigFromOptions({ configObject: job.config }),
  );
  if (await finishedRun(job.folder, resolved))
    return { kind: 'train', runId: job.runId, status: 'reused', seconds: seconds() };
  const context = silentContext(signal);
  let status: 'trained' | 'resumed' = 'trained';
  let code: number | null = null;
  const sameConfig = await readFile(join(job.folder, 'config.json'), 'utf8').then(
    (text) => text.trim() === resolved.trim(),
    () => false,
  );
  if (sameConfig && existsSync(join(job.folder, 'checkpoints', 'last.ckpt'))) {
    try {
      code = await trainCommand({ resume: job.folder }, context);
      status = 'resumed';
    } catch {
      // A checkpoint the killed attempt left unusable: train again from scratch below.
      code = null;
    }
  }
  if (code === null)
    code = await trainCommand({ configObject: job.config, out: job.folder, force: true }, context);
  if (code === 130) throw new JobFailedError(`run ${job.runId} was interrupted`, 130);
  if (code !== 0) throw new JobFailedError(`run ${job.runId} exited with ${code}`, code);
  await mkdir(job.sweep, { recursive: true });
  await appendFile(
    join(job.sweep, 'completions.jsonl'),
    `${JSON.stringify({ runId: job.runId, status, host: hostname(), pid: process.pid, at: new Date().toISOString() })}\n`,
  );
  return { kind: 'train', runId: job.runId, status, seconds: seconds() };
}

/** SHA-256 of a file's bytes (hex). */
async function fileSha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

/**
 * Everything a shard's bytes depend on: its index, the model's bytes, the tensor, input and
 * batch size, and each image's path, item id, size and modification time. A leftover shard
 * is reused only when its record names the same identity.
 */
async function shardIdentity(job: FeatureShardJob): Promise<string> {
  const images = await Promise.all(
    job.images.map(async (image) => {
      const info = await stat(image.file).catch(() => null);
      return [image.itemId, image.file, info?.size ?? null, info?.mtimeMs ?? null];
    }),
  );
  return createHash('sha256')
    .update(
      JSON.stringify({
        shard: job.shard,
        model: await fileSha256(job.model),
        tensor: job.tensor ?? null,
        inputName: job.inputName ?? null,
        batchSize: job.batchSize,
        images,
      }),
    )
    .digest('hex');
}

/** What a finished shard records beside its `.npy`: its identity and its files' SHA-256. */
interface ShardRecord {
  readonly identity: string;
  readonly npy: string;
  readonly manifest: string;
}

/**
 * Why a finished shard left by an earlier attempt cannot be reused (null: it can): no
 * record, another identity (another model, image list, shard or settings), or files whose
 * bytes changed since (a flipped byte, a truncated or swapped file).
 */
async function shardMismatch(job: FeatureShardJob, identity: string): Promise<string | null> {
  const recordFile = `${job.output}.shard.json`;
  if (!existsSync(recordFile)) return 'no record of how it was extracted';
  let record: Partial<ShardRecord>;
  try {
    record = (await readJson(recordFile)) as Partial<ShardRecord>;
  } catch {
    return 'an unreadable record';
  }
  if (record.identity !== identity)
    return 'it was extracted from another model, image list, shard or settings';
  if (record.npy !== (await fileSha256(job.output))) return 'its .npy changed since';
  if (record.manifest !== (await fileSha256(`${job.output}.manifest.json`)))
    return 'its manifest changed since';
  return null;
}

async function runFeatureShard(
  job: FeatureShardJob,
  signal: AbortSignal,
  seconds: () => number,
): Promise<JobResult> {
  const { extractFeatures } = await import('@advrec/features');
  const manifestFile = `${job.output}.manifest.json`;
  const recordFile = `${job.output}.shard.json`;
  const identity = await shardIdentity(job);
  if (existsSync(job.output) && existsSync(manifestFile)) {
    const mismatch = await shardMismatch(job, identity);
    if (mismatch === null) {
      const manifest = (await readJson(manifestFile)) as { rows?: number };
      return {
        kind: 'features-shard',
        shard: job.shard,
        status: 'reused',
        rows: manifest.rows ?? 0,
        seconds: seconds(),
      };
    }
    // A finished leftover that cannot be trusted is extracted again from scratch.
    await Promise.all([job.output, manifestFile, recordFile].map((f) => rm(f, { force: true })));
  }
  await mkdir(dirname(job.output), { recursive: true });
  const result = await extractFeatures({
    model: job.model,
    images: job.images,
    output: job.output,
    batchSize: job.batchSize,
    ...(job.tensor ? { tensor: job.tensor } : {}),
    ...(job.inputName ? { inputName: job.inputName } : {}),
    ...(job.threads ? { threads: job.threads } : {}),
    signal,
  });
  const record: ShardRecord = {
    identity,
    npy: await fileSha256(job.output),
    manifest: await fileSha256(manifestFile),
  };
  await writeFileAtomic(recordFile, () => [JSON.stringify(record) + '\n']);
  return {
    kind: 'features-shard',
    shard: job.shard,
    status: 'extracted',
    rows: result.manifest.rows,
    seconds: seconds(),
  };
}

/** Checks that a value received from a queue or a thread is a job advrec knows. */
export function asWorkerJob(value: unknown, where: string): WorkerJob {
  const job = value as Partial<WorkerJob> | null;
  if (
    typeof job === 'object' &&
    job !== null &&
    ((job.kind === 'train' &&
      typeof job.runId === 'string' &&
      typeof job.folder === 'string' &&
      typeof job.sweep === 'string' &&
      typeof job.config === 'object' &&
      job.config !== null) ||
      (job.kind === 'features-shard' &&
        typeof job.output === 'string' &&
        typeof job.model === 'string' &&
        Array.isArray(job.images)))
  ) {
    const confined = confinementProblem(job as WorkerJob);
    if (confined !== null)
      throw new DataError(
        `${where}: ${confined}; a job writes only inside its sweep's folder, so it is not run`,
      );
    return job as WorkerJob;
  }
  throw new DataFormatError(
    { file: where },
    'an advrec job (kind train or features-shard)',
    JSON.stringify(value)?.slice(0, 120) ?? String(value),
  );
}

/** A run id a sweep gives: one file name, no separators, not `.` or `..`. */
const isFileName = (name: string): boolean =>
  name.length > 0 && name !== '.' && name !== '..' && !/[/\\\0]/.test(name);

/**
 * What is wrong with where a job would write, or null: a run is written only to
 * `<sweep>/runs/<runId>` (an absolute sweep folder, a run id that is one file name), and a
 * feature shard only to `shard-<n>.npy` in a `<output>.shards` folder. A job on a shared
 * queue is data anyone with the queue's password can write; it must not choose where a
 * worker writes.
 */
function confinementProblem(job: WorkerJob): string | null {
  if (job.kind === 'train') {
    if (!isAbsolute(job.sweep)) return `its sweep folder "${job.sweep}" is not an absolute path`;
    if (!isFileName(job.runId)) return `its run id "${job.runId}" is not a plain folder name`;
    const expected = join(job.sweep, 'runs', job.runId);
    return job.folder === expected
      ? null
      : `its run folder "${job.folder}" is not ${expected}, inside its sweep folder`;
  }
  const folder = dirname(job.output);
  return isAbsolute(job.output) &&
    folder.endsWith('.shards') &&
    /^shard-\d{4,}\.npy$/.test(basename(job.output))
    ? null
    : `its shard file "${job.output}" is not an absolute <output>.shards/shard-<n>.npy`;
}

/** The CLI's jobs for `@advrec/sweep`'s pools and queue workers. */
export const jobRunner: JobRunner<WorkerJob, JobResult> = {
  runJob,
  checkJob: asWorkerJob,
  describeFailure: (error) => {
    // As the CLI itself describes it: a plugin's own error is named, with exit code 2.
    const { line, code } = describeFailure(error);
    return { message: line.replace(/^advrec: /, ''), exitCode: code };
  },
  describeJob: (job) => (job.kind === 'train' ? `run ${job.runId}` : `features shard ${job.shard}`),
};

/**
 * This module as worker threads load it: the built `dist/sweep/jobs.js` (under a TypeScript
 * runner, the tests, threads cannot load `.ts`, so the built file is used; it must be built).
 */
export function sweepJobRunnerModule(): URL {
  const here = import.meta.url;
  const entry = here.endsWith('.ts') ? new URL('../../dist/sweep/jobs.js', here) : new URL(here);
  if (!existsSync(fileURLToPath(entry)))
    throw new Error(
      `the job runner ${fileURLToPath(entry)} is missing: build the CLI (pnpm --filter advrec build)`,
    );
  return entry;
}
