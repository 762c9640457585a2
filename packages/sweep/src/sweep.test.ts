import { describe, expect, it } from 'vitest';
import { JobFailedError, asJobFailure } from './jobs.js';
import { runLocalPool } from './pool.js';
import { QueuePackageMissingError, checkQueue } from './queue.js';
import { MAX_RUN_NAME_BYTES, expandSweep } from './spec.js';
import type { SweepConfigHooks, SweepSpec } from './spec.js';

const runnerModule = new URL('./test-support/echo-runner.mjs', import.meta.url);

interface EchoResult {
  readonly kind: string;
  readonly status: string;
  readonly seconds: number;
  readonly doubled: number;
  readonly threadId: number;
}

async function pool(
  workers: number,
  values: number[],
  failing: number[] = [],
  fromTimer: number[] = [],
) {
  const done = new Map<string, EchoResult>();
  const failed = new Map<string, JobFailedError>();
  const jobs = values.map((value) => ({
    id: `job-${value}`,
    job: {
      kind: 'echo',
      value,
      fail: failing.includes(value),
      timer: fromTimer.includes(value),
      exitCode: 3,
    },
  }));
  await runLocalPool<(typeof jobs)[number], EchoResult>(jobs, {
    workers,
    runnerModule,
    events: {
      onDone: (job, result) => done.set(job.id, result),
      onFail: (job, error) => failed.set(job.id, error),
    },
    signal: new AbortController().signal,
  });
  return { done, failed };
}

describe('the in-process pool', () => {
  it('runs every job once, in this thread with one worker', async () => {
    const { done, failed } = await pool(1, [1, 2, 3]);
    expect([...done.entries()].map(([id, r]) => [id, r.doubled])).toEqual([
      ['job-1', 2],
      ['job-2', 4],
      ['job-3', 6],
    ]);
    expect(new Set([...done.values()].map((r) => r.threadId))).toEqual(new Set([0]));
    expect(failed.size).toBe(0);
  });

  it('with two workers uses two threads kept for several jobs; a failure keeps its exit code', async () => {
    const { done, failed } = await pool(2, [1, 2, 3, 4, 5, 6], [4]);
    expect(done.size).toBe(5);
    const threads = new Set([...done.values()].map((r) => r.threadId));
    expect(threads.size).toBe(2);
    expect(threads.has(0)).toBe(false);
    expect(failed.get('job-4')?.message).toBe(
      "described in the job's thread: job 4 failed on purpose",
    );
    expect(failed.get('job-4')?.exitCode).toBe(3);
  });

  it("an error thrown outside a job's promise (a plugin's timer) fails that job as the thread's runner describes it; the next job gets a fresh thread", async () => {
    const { done, failed } = await pool(2, [1, 2, 3, 4], [], [2]);
    expect([...failed.keys()]).toEqual(['job-2']);
    expect(failed.get('job-2')?.message).toBe(
      "described in the job's thread: job 2 threw from a timer",
    );
    // The runner's exit code, not the thread's death (1, which a queue retries).
    expect(failed.get('job-2')?.exitCode).toBe(2);
    expect([...done.keys()].sort()).toEqual(['job-1', 'job-3', 'job-4']);
  });

  it('names a runner module that exports no jobRunner', async () => {
    await expect(
      runLocalPool([{ id: 'x', job: { kind: 'echo' } }], {
        workers: 1,
        runnerModule: new URL('./jobs.ts', import.meta.url),
        events: {},
        signal: new AbortController().signal,
      }),
    ).rejects.toThrow(/exports no jobRunner/);
  });
});

describe('failures and the optional queue', () => {
  it('asJobFailure keeps a JobFailedError and describes anything else', () => {
    const kept = new JobFailedError('kept', 2);
    expect(asJobFailure(kept, { describeFailure: () => ({ message: 'x', exitCode: 9 }) })).toBe(
      kept,
    );
    const made = asJobFailure(new Error('boom'), {
      describeFailure: (e) => ({ message: `said: ${(e as Error).message}`, exitCode: 4 }),
    });
    expect([made.message, made.exitCode]).toEqual(['said: boom', 4]);
  });

  it('a queue URL that is not redis:// is refused naming the flag', async () => {
    await expect(checkQueue('http://127.0.0.1:1', '--queue')).rejects.toThrow(
      /--queue.*redis:\/\/ or rediss:\/\//,
    );
  });

  it('the missing-package error is one line naming the package and the way out', () => {
    const error = new QueuePackageMissingError('bullmq', '--queue');
    expect(error.message).toMatch(/optional package bullmq.*npm install bullmq ioredis/);
    expect(error.message).not.toContain('\n    at ');
  });
});

describe('expansion under an application’s hooks', () => {
  const hooks: SweepConfigHooks<{ lr: number; seed: number; metric: string }> = {
    readConfigFile: () => Promise.resolve({}),
    applyOverrides: (base, overrides) => {
      const out: Record<string, unknown> = structuredClone(base) as Record<string, unknown>;
      for (const o of overrides) {
        const [path, value] = o.split('=') as [string, string];
        out[path] = JSON.parse(value) as unknown;
      }
      return out;
    },
    prepareRun: (config) => ({
      config,
      resolved: {
        lr: Number(config['training.lr'] ?? 0.1),
        seed: Number(config['training.seed'] ?? 0),
        metric: String(config.metric ?? 'ndcg@10'),
      },
    }),
    validationMetric: (r) => r.metric,
    toJson: (r) => JSON.stringify(r),
  };
  const spec: SweepSpec = {
    base: {},
    set: [],
    axes: [{ path: 'training.lr', name: 'lr', values: [0.1, 0.01] }],
    seeds: [1, 2],
  };

  it('runs the grid times the seeds, first axis slowest, with stable ids and fingerprint', () => {
    const plan = expandSweep(spec, hooks);
    expect(plan.runs.map((r) => r.id)).toEqual([
      'lr=0.1_seed=1',
      'lr=0.1_seed=2',
      'lr=0.01_seed=1',
      'lr=0.01_seed=2',
    ]);
    expect(plan.runs.map((r) => [r.resolved.lr, r.resolved.seed])).toEqual([
      [0.1, 1],
      [0.1, 2],
      [0.01, 1],
      [0.01, 2],
    ]);
    expect(plan.metric).toBe('ndcg@10');
    expect(expandSweep(spec, hooks).fingerprint).toBe(plan.fingerprint);
    expect(expandSweep({ ...spec, seeds: [1, 3] }, hooks).fingerprint).not.toBe(plan.fingerprint);
  });

  it('keeps run folder names under the file system limit: a long axis value is cut and hashed', () => {
    const long = (tail: string) => `${'x'.repeat(400)}${tail}`;
    const plan = expandSweep(
      { ...spec, axes: [{ path: 'plugin', name: 'plugin', values: [long('a'), long('b')] }] },
      hooks,
    );
    const ids = plan.runs.map((r) => r.id);
    for (const id of ids) expect(Buffer.byteLength(id)).toBeLessThanOrEqual(MAX_RUN_NAME_BYTES);
    expect(new Set(ids).size).toBe(4);
    expect(ids[0]).toMatch(/^plugin=x+~[0-9a-f]{12}$/);
  });

  it('refuses runs that validate on different metrics', () => {
    expect(() =>
      expandSweep(
        { ...spec, axes: [{ path: 'metric', name: 'metric', values: ['a', 'b'] }] },
        hooks,
      ),
    ).toThrow(/same metric/);
  });
});
