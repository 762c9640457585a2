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
