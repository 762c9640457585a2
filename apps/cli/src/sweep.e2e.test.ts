/**
 * Sweeps and sharded feature extraction on a real Redis server (Debian's redis-server, on
 * 127.0.0.1), run as users run them: the built `advrec` binary, a sweep coordinator and
 * three `advrec worker` processes, one of them killed with SIGKILL in the middle of a run.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '@advrec/models';
import { freePort, redisServerPath, sharedDataDir, startRedisServer } from '@advrec/testing';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'dist', 'bin.js');
const shared = sharedDataDir();
const work = mkdtempSync(join(tmpdir(), 'advrec-sweep-'));
/** Debian's redis-server (or REDIS_SERVER); `.ci/run` installs it where it is missing. */
const redisServer = redisServerPath();
const children: ChildProcess[] = [];

interface Proc {
  readonly child: ChildProcess;
  stderr: string;
  stdout: string;
  readonly exited: Promise<number | null>;
}

function start(args: readonly string[]): Proc {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    env: {
      ...process.env,
      ADVREC_SHARED_DATA: shared,
      ADVREC_DATA_DIR: join(work, 'datasets'),
      FORCE_COLOR: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const proc: Proc = {
    child,
    stderr: '',
    stdout: '',
    exited: new Promise((done) => child.on('close', (code) => done(code))),
  };
  child.stdout!.on('data', (chunk: Buffer) => (proc.stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (proc.stderr += chunk.toString()));
  return proc;
}

async function until(condition: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sweepFile = join(work, 'apr-grid.yaml');
writeFileSync(
  sweepFile,
  `# APR on ML-100K: 3 epsilons x 3 lambdas x 2 seeds, short runs
config:
  data:
    source: ml-100k
    split: { protocol: leave-one-out, order: latest, seed: 42 }
    validation: true
  model: { name: mf, embeddingSize: 16 }
  training:
    epochs: 4
    adversarialEpochs: 3
    threads: 1
    validation: { every: 1, metric: ndcg@20 }
  evaluation: { protocol: full, cutoffs: [10, 20], metrics: [hr, ndcg] }
  attack: { epsilons: [0.5], adversaries: [fgm] }
axes:
  training.adversarial.epsilon: [0.1, 0.5, 1]
  training.adversarial.adversarialWeight: [0.1, 1, 10]
seeds: [1, 2]
`,
);

let redis: { url: string; stop(): void } | null = null;
let queueUrl = '';

beforeAll(async () => {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build first (pnpm build)`);
  if (redisServer === null) return;
  redis = await startRedisServer(redisServer);
  queueUrl = redis.url;
});

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  redis?.stop();
});

function aggregateOf(folder: string): unknown {
  return JSON.parse(readFileSync(join(folder, 'aggregate.json'), 'utf8'));
}

describe('advrec sweep', () => {
  const poolFolder = join(work, 'pool');

  it('runs an APR grid on ML-100K in the in-process pool (2 threads): 18 run folders, tables, heat maps, best on validation', async () => {
    const proc = start(['sweep', sweepFile, '-o', poolFolder, '--workers', '2']);
    expect(await proc.exited, proc.stderr).toBe(0);
    const aggregate = aggregateOf(poolFolder) as {
      runs: { id: string; validation: number; test: Record<string, number> }[];
      configurations: { point: Record<string, number>; validation: { mean: number; n: number } }[];
      best: { point: Record<string, number>; validation: { mean: number } };
      missing: string[];
    };
    expect(aggregate.runs).toHaveLength(18);
    expect(aggregate.missing).toEqual([]);
    expect(aggregate.configurations).toHaveLength(9);
    expect(aggregate.configurations.every((c) => c.validation.n === 2)).toBe(true);
    const top = Math.max(...aggregate.configurations.map((c) => c.validation.mean));
    expect(aggregate.best.validation.mean).toBe(top);
    // Seeds change the model: the two runs of one configuration differ.
    const [a, b] = aggregate.runs;
    expect(a!.test['ndcg@20']).not.toBe(b!.test['ndcg@20']);
    for (const file of [
      'report.md',
      'report.html',
      'plots/sweep-validation.svg',
      'plots/sweep-test.svg',
    ])
      expect(existsSync(join(poolFolder, file)), file).toBe(true);
    const report = readFileSync(join(poolFolder, 'report.md'), 'utf8');
    expect(report).toMatch(/Best configuration \(chosen on validation only\)/);
    expect(report).toMatch(/\| epsilon \\ adversarialWeight \| 0\.1 \| 1 \| 10 \|/);
    // The robustness audit of every run, per configuration.
    expect(report).toMatch(/## Robustness: change of test ndcg@20 under attack/);
    expect(report).toMatch(/\| epsilon \| adversarialWeight \| fgm@0\.5 \|/);
    expect(readdirSync(join(poolFolder, 'runs'))).toHaveLength(18);
    const progress = JSON.parse(readFileSync(join(poolFolder, 'progress.json'), 'utf8')) as {
      done: number;
      failed: number;
      total: number;
    };
    expect(progress).toMatchObject({ done: 18, failed: 0, total: 18 });
    // Run again: every run folder is finished, nothing is retrained.
    const again = start(['sweep', sweepFile, '-o', poolFolder]);
    expect(await again.exited, again.stderr).toBe(0);
    expect(
      readFileSync(join(poolFolder, 'completions.jsonl'), 'utf8').trim().split('\n'),
    ).toHaveLength(18);
    expect(aggregateOf(poolFolder)).toEqual(aggregate);
  });

  it('refuses a bad sweep file naming the field, before any run', async () => {
    const bad = join(work, 'bad.yaml');
    writeFileSync(
      bad,
      'config: { data: { source: ml-100k, validation: true }, model: { name: mf } }\naxes:\n  training.adversarial.epsilon: [0.1, 0.1]\n  training.optimizer.learningRate: [-1]\nseeds: [1, 1]\n',
    );
    const proc = start(['sweep', bad, '-o', join(work, 'bad-sweep')]);
    expect(await proc.exited).toBe(2);
    expect(proc.stderr).toMatch(/axes\.training\.adversarial\.epsilon: lists a value twice/);
    expect(proc.stderr).toMatch(/seeds: lists a seed twice/);
    const noValidation = join(work, 'no-validation.yaml');
    writeFileSync(
      noValidation,
      'config: { data: { source: ml-100k, validation: false }, model: { name: mf } }\naxes: { training.l2: [0, 0.01] }\n',
    );
    const second = start(['sweep', noValidation, '-o', join(work, 'bad-sweep')]);
    expect(await second.exited).toBe(2);
    expect(second.stderr).toMatch(
      /base\.data\.validation: a sweep chooses its best configuration on validation/,
    );
    expect(existsSync(join(work, 'bad-sweep', 'runs'))).toBe(false);
  });

  it("refuses to write into a user's folder (files, no sweep.json) unless --force", async () => {
    const mine = join(work, 'mine');
    mkdirSync(mine);
    writeFileSync(join(mine, 'report.md'), 'my notes\n');
    writeFileSync(join(mine, 'aggregate.json'), '{"mine": true}\n');
    const proc = start(['sweep', sweepFile, '-o', mine]);
    expect(await proc.exited).toBe(2);
    expect(proc.stderr).toMatch(
      /--out: .*mine is not empty and holds no sweep \(sweep\.json\); choose another --out, or pass --force/,
    );
    expect(readdirSync(mine).sort()).toEqual(['aggregate.json', 'report.md']);
    expect(readFileSync(join(mine, 'report.md'), 'utf8')).toBe('my notes\n');
  });

  it.skipIf(redisServer === null)(
    `runs the same grid on a Redis queue with 3 worker processes, one killed with SIGKILL mid-run: every run completes exactly once and the aggregate equals the pool's (${redisServer ?? 'no redis-server found: install it or set REDIS_SERVER'})`,
    async () => {
      const queueFolder = join(work, 'queue');
      const coordinator = start(['sweep', sweepFile, '-o', queueFolder, '--queue', queueUrl]);
      const workers = [0, 1, 2].map(() =>
        start([
          'worker',
          '--queue',
          queueUrl,
          '--lock-duration',
          '2000',
          '--stalled-interval',
          '1000',
        ]),
      );
      // Kill the first worker half a second into its first run.
      await until(() => /started: run (\S+)/.test(workers[0]!.stderr), 'worker 0 to start a run');
      const killedRun = /started: run (\S+)/.exec(workers[0]!.stderr)![1]!;
      await new Promise((r) => setTimeout(r, 500));
      expect(workers[0]!.stderr).not.toMatch(
        new RegExp(`done: run ${killedRun.replace(/\./g, '\\.')}`),
      );
      workers[0]!.child.kill('SIGKILL');
      expect(await coordinator.exited, coordinator.stderr).toBe(0);
      // The killed worker's run was taken over by another worker and finished there.
      const others = workers[1]!.stderr + workers[2]!.stderr;
      expect(others).toContain(`started: run ${killedRun} `);
      expect(others).toContain(`done: run ${killedRun},`);
      // Every run completed exactly once.
      const completions = readFileSync(join(queueFolder, 'completions.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { runId: string }).runId);
      expect(completions).toHaveLength(18);
      expect(new Set(completions).size).toBe(18);
      // No run folder is corrupt: finished, same config as planned, checkpoints verify.
      for (const run of readdirSync(join(queueFolder, 'runs'))) {
        const folder = join(queueFolder, 'runs', run);
        expect(JSON.parse(readFileSync(join(folder, 'run.json'), 'utf8')).status).toBe('done');
        expect(
          readdirSync(folder).filter((f) => f.includes('.tmp') || f === '.advrec.lock'),
        ).toEqual([]);
        const model = await readCheckpoint(join(folder, 'checkpoints', 'model.ckpt'));
        expect(model.model.modelName).toBe('mf');
      }
      expect(aggregateOf(queueFolder)).toEqual(aggregateOf(poolFolder));

      // Sharded extraction over real posters on the same queue (2 workers left): the bytes
      // of a single-process extraction.
      const model = join(shared, '..', 'models', 'mobilenetv2-12-int8', 'mobilenetv2-12-int8.onnx');
      const posters = join(shared, 'ml-1m', 'posters');
      const common = [
        '-m',
        model,
        '-i',
        posters,
        '--extractor',
        'mobilenetv2-12-int8',
        '--id-offset',
        '-1',
        '--limit',
        '192',
        '--batch-size',
        '16',
      ];
      const single = start(['features', ...common, '-o', join(work, 'single.npy')]);
      expect(await single.exited, single.stderr).toBe(0);
      const sharded = start([
        'features',
        ...common,
        '-o',
        join(work, 'sharded.npy'),
        '--queue',
        queueUrl,
        '--shards',
        '4',
      ]);
      expect(await sharded.exited, sharded.stderr).toBe(0);
      expect(workers[1]!.stderr + workers[2]!.stderr).toMatch(/done: features shard 3/);
      expect(readFileSync(join(work, 'sharded.npy'))).toEqual(
        readFileSync(join(work, 'single.npy')),
      );
      expect(readFileSync(join(work, 'sharded.npy.manifest.json'), 'utf8')).toBe(
        readFileSync(join(work, 'single.npy.manifest.json'), 'utf8'),
      );
      expect(existsSync(join(work, 'sharded.npy.shards'))).toBe(false);
      for (const worker of workers.slice(1)) worker.child.kill('SIGTERM');
      for (const worker of workers.slice(1)) expect(await worker.exited).toBe(0);
      expect(workers[1]!.stdout).toMatch(/worker stopped: \d+ jobs done, 0 failed/);
    },
  );

  it('says clearly when no Redis answers at the URL', async () => {
    const port = await freePort();
    const proc = start(['worker', '--queue', `redis://127.0.0.1:${port}`]);
    expect(await proc.exited).toBe(2);
    expect(proc.stderr).toMatch(
      new RegExp(`--queue: no Redis server answers at redis://127\\.0\\.0\\.1:${port}`),
    );
  });
});

describe.skipIf(redisServer === null)(
  'the queue without its server, and jobs that are not jobs',
  () => {
    /** A one-run sweep on a small synthetic set. */
    const smallSweep = (name: string, epochs: number, plugins: string[] = []): string => {
      const file = join(work, `${name}.yaml`);
      writeFileSync(
        file,
        `config:
  data: { source: synthetic, synthetic: { users: 120, items: 90, seed: 3 } }
  model: { name: mf, embeddingSize: 8 }
  training: { epochs: ${epochs}, threads: 1, validation: { every: 1 } }
  evaluation: { cutoffs: [10] }
  plugins: ${JSON.stringify(plugins)}
seeds: [1]
`,
      );
      return file;
    };
    const noStack = (text: string): void => {
      expect(text).not.toMatch(/^\s+at /m);
      expect(text).not.toMatch(/\[ioredis\]|Unhandled error event/);
    };

    it('a wrong password is named as such, without printing it', async () => {
      const server = await startRedisServer(redisServer, ['--requirepass', 'right-horse']);
      try {
        const proc = start([
          'worker',
          '--queue',
          `redis://:battery-staple@127.0.0.1:${server.port}`,
        ]);
        expect(await proc.exited).toBe(2);
        expect(proc.stderr).toMatch(
          new RegExp(
            `--queue: the Redis server at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${server.port} refused the URL's credentials \\(WRONGPASS`,
          ),
        );
        expect(proc.stderr).not.toContain('battery-staple');
        noStack(proc.stderr);
      } finally {
        server.stop();
      }
    });

    it('Redis killed mid-sweep: the sweep and its worker say so in one line, wait --queue-wait, exit 6; the same sweep then finishes', async () => {
      const server = await startRedisServer(redisServer);
      const folder = join(work, 'lost');
      const file = smallSweep('lost', 400);
      const worker = start(['worker', '--queue', server.url, '--queue-wait', '2']);
      const sweep = start([
        'sweep',
        file,
        '-o',
        folder,
        '--queue',
        server.url,
        '--queue-wait',
        '2',
      ]);
      await until(() => /started: run /.test(worker.stderr), 'the worker to start the run');
      const killedAt = Date.now();
      server.stop();
      expect(await sweep.exited, sweep.stderr).toBe(6);
      expect(await worker.exited, worker.stderr).toBe(6);
      // Two seconds of waiting, a second between checks, the worker's checkpoint: well inside 30 s.
      expect(Date.now() - killedAt).toBeLessThan(30_000);
      for (const proc of [sweep, worker]) {
        noStack(proc.stderr);
        expect(proc.stderr.match(/does not answer/g)).toHaveLength(1);
        expect(proc.stderr).toMatch(
          /has not answered for \d+ s \(.*\); the jobs stay on the queue: start Redis again and run the same command to go on/,
        );
      }
      expect(sweep.stderr).toMatch(/advrec: queue advrec: the Redis server at redis:\/\/127/);
      // The worker stopped its run as Ctrl-C does: a resumable checkpoint.
      const run = readdirSync(join(folder, 'runs'))[0]!;
      expect(existsSync(join(folder, 'runs', run, 'checkpoints', 'last.ckpt'))).toBe(true);
      // Redis back (empty: this one keeps no data): the same command resumes the run.
      const again = await startRedisServer(redisServer);
      try {
        const worker2 = start(['worker', '--queue', again.url]);
        const sweep2 = start(['sweep', file, '-o', folder, '--queue', again.url]);
        expect(await sweep2.exited, sweep2.stderr).toBe(0);
        worker2.child.kill('SIGTERM');
        expect(await worker2.exited).toBe(0);
        const completions = readFileSync(join(folder, 'completions.jsonl'), 'utf8');
        expect(JSON.parse(completions.trim()).status).toBe('resumed');
      } finally {
        again.stop();
      }
    }, 120_000);

    it('a job whose data is not JSON, or not an advrec job, fails at once, named by its id', async () => {
      const { Queue } = await import('bullmq');
      const queue = new Queue('odd-jobs', { connection: { url: queueUrl } });
      try {
        await queue.add('train', { kind: 'train' }, { jobId: 'garbled-1', attempts: 3 });
        await queue.add('train', { kind: 'nonsense' }, { jobId: 'nonsense-1', attempts: 3 });
        const { Redis } = await import('ioredis');
        const client = new Redis(queueUrl);
        await client.hset('bull:odd-jobs:garbled-1', 'data', '{"kind": "train", oops');
        client.disconnect();
        const worker = start(['worker', '--queue', queueUrl, '--queue-name', 'odd-jobs']);
        await until(
          () =>
            /job garbled-1 failed/.test(worker.stderr) &&
            /job nonsense-1 failed/.test(worker.stderr),
          'both jobs to fail',
        );
        // Longer than the retry's backoff (1 s): a retry would have started by now.
        await new Promise((r) => setTimeout(r, 2000));
        worker.child.kill('SIGTERM');
        expect(await worker.exited).toBe(0);
        expect(worker.stderr).toMatch(
          /job garbled-1 failed: unreadable job: \[exit 3\] queue odd-jobs, job garbled-1: its data is not JSON/,
        );
        expect(worker.stderr).toMatch(
          /job nonsense-1 failed: malformed job: \[exit 3\] queue odd-jobs, job nonsense-1: /,
        );
        noStack(worker.stderr);
        for (const id of ['garbled-1', 'nonsense-1']) {
          expect(await queue.getJobState(id)).toBe('failed');
          // Failed once, for good, although the job allowed 3 attempts.
          expect(worker.stderr.match(new RegExp(`job ${id} failed`, 'g'))).toHaveLength(1);
        }
      } finally {
        await queue.obliterate({ force: true });
        await queue.close();
      }
    });

    it('a plugin that throws inside a queued run (from its own timer) is named, exit 2, and not retried', async () => {
      const plugin = join(work, 'timer-boom.mjs');
      // It misbehaves only where runs train (a worker's job thread), not where the sweep loads it.
      writeFileSync(
        plugin,
        `import { isMainThread } from 'node:worker_threads';
if (!isMainThread) setTimeout(() => { throw new Error('boom from a timer'); }, 200);
export {};`,
      );
      const folder = join(work, 'plugin-in-job');
      const file = smallSweep('plugin-in-job', 40, [plugin]);
      const worker = start(['worker', '--queue', queueUrl, '--queue-name', 'plugin-jobs']);
      const sweep = start([
        'sweep',
        file,
        '-o',
        folder,
        '--queue',
        queueUrl,
        '--queue-name',
        'plugin-jobs',
        '--attempts',
        '3',
      ]);
      expect(await sweep.exited, sweep.stderr).not.toBe(0);
      worker.child.kill('SIGTERM');
      await worker.exited;
      expect(worker.stderr).toMatch(
        /failed: run \S+: \[exit 2\] plugin ".*timer-boom\.mjs" failed: boom from a timer/,
      );
      expect(worker.stderr.match(/started: run /g)).toHaveLength(1);
      noStack(worker.stderr + sweep.stderr);
    }, 120_000);
  },
);
