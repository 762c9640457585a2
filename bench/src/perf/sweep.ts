/**
 * `pnpm bench sweep`: one APR grid on ML-100K (3 epsilons x 3 lambdas x 2 seeds = 18 runs, MF
 * K = 64, 10 BPR + 5 APR epochs, validation every 5, one training thread per run) executed by
 * the built `advrec sweep`:
 * - in the in-process pool with 1, 2 and 3 workers, and with 1 worker whose runs use 2
 *   training threads (the plain one-run-at-a-time default);
 * - on a Redis queue (a redis-server started here on 127.0.0.1) with 1, 2 and 3 `advrec worker`
 *   processes;
 * each twice, medians reported, every aggregate checked equal to the first one. The queue's
 * overhead per job is measured on the same sweep once every run folder is finished (each job
 * then reads its folder and returns: what is left is queue, thread and module start-up).
 * Then sharded extraction of all ML-1M posters (MobileNetV2) with 2 queue workers against a
 * single-process extraction: wall times and byte identity. 2 cores: scaling is expected flat.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisServerPath, startRedisServer } from '@advrec/testing';
import { ADVREC_BIN, median, secondsSince } from '../context.js';
import type { BenchAbout, BenchContext } from '../context.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
export const about: BenchAbout = {
  kind: 'perf',
  what: "one APR grid on ML-100K (3 epsilons x 3 lambdas x 2 seeds = 18 runs, MF K = 64, 10 BPR + 5 APR epochs) run by the built `advrec sweep`: the in-process pool with 1, 2 and 3 workers, and a Redis queue (redis-server started on 127.0.0.1) with 1, 2 and 3 `advrec worker` processes, twice each; the queue's overhead per job; sharded extraction of all ML-1M posters (MobileNetV2) with 2 queue workers against one process",
  figures:
    'per setting `medianSeconds`, every aggregate checked equal to the first, `queueOverheadPerJobSeconds`, sharded extraction wall times and byte identity',
};

const bin = ADVREC_BIN;
const REPEATS = 2;

interface Proc {
  readonly child: ChildProcess;
  stderr: string;
  readonly exited: Promise<number | null>;
}

function start(args: readonly string[], shared: string): Proc {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ADVREC_SHARED_DATA: shared, FORCE_COLOR: '0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const proc: Proc = {
    child,
    stderr: '',
    exited: new Promise((done) => child.on('close', (code) => done(code))),
  };
  child.stderr!.on('data', (chunk: Buffer) => (proc.stderr += chunk.toString()));
  return proc;
}

async function finished(proc: Proc, what: string): Promise<void> {
  const code = await proc.exited;
  if (code !== 0) throw new Error(`${what} exited ${code}: ${proc.stderr.slice(-2000)}`);
}

function grid(threads: number): string {
  return `config:
  data:
    source: ml-100k
    split: { protocol: leave-one-out, order: latest, seed: 42 }
    validation: true
  model: { name: mf, embeddingSize: 64 }
  training:
    epochs: 10
    adversarialEpochs: 5
    threads: ${threads}
    validation: { every: 5, metric: ndcg@20 }
  evaluation: { protocol: full, cutoffs: [10, 20], metrics: [hr, ndcg] }
axes:
  training.adversarial.epsilon: [0.1, 0.5, 1]
  training.adversarial.adversarialWeight: [0.1, 1, 10]
seeds: [1, 2]
`;
}

/** What the sweep benchmark's steps share: the scratch folder, the Redis URL and worker processes. */
interface Rig {
  readonly context: BenchContext;
  readonly work: string;
  readonly url: string;
  startWorkers(n: number): Proc[];
  stopWorkers(workers: Proc[]): Promise<void>;
  /** A new folder name under the scratch folder. */
  folder(prefix: string): string;
}

/**
 * Queue and thread overhead per job: the same sweep again into a finished folder, so that
 * every job only reads its run folder. Milliseconds per job, per execution mode.
 */
async function jobOverhead(
  rig: Rig,
  sweepFile: string,
  lastQueueFolder: string,
): Promise<Record<string, number>> {
  const overhead: Record<string, number> = {};
  for (const [name, flags, workers] of [
    ['queue, 1 worker process', ['--queue', rig.url], 1],
    ['pool, 2 workers', ['--workers', '2'], 0],
    ['pool, 1 worker', [], 0],
  ] as const) {
    const pool = workers > 0 ? rig.startWorkers(workers) : [];
    const times: number[] = [];
    for (let k = 0; k < 3; k++) {
      // A copy in a new folder: new job ids on the queue, every run folder already finished.
      const copy = rig.folder('finished');
      cpSync(lastQueueFolder, copy, { recursive: true });
      rmSync(join(copy, 'sweep.json'));
      const started = performance.now();
      await finished(
        start(['sweep', sweepFile, '-o', copy, ...flags], rig.context.sharedData),
        `${name} (finished folders)`,
      );
      times.push(secondsSince(started));
    }
    await rig.stopWorkers(pool);
    overhead[name] = Number(((median(times) * 1000) / 18).toFixed(1));
    rig.context.log(
      `${name}, 18 finished runs: median ${median(times).toFixed(2)} s, ${overhead[name]} ms per job`,
    );
  }
  return overhead;
}

/** Sharded feature extraction over every ML-1M poster: one process against 8 shards on 2 queue workers. */
async function shardedExtraction(rig: Rig) {
  // Sharded feature extraction over every ML-1M poster.
  const model = join(
    rig.context.sharedData,
    '..',
    'models',
    'mobilenetv2-12-int8',
    'mobilenetv2-12-int8.onnx',
  );
  const posters = join(rig.context.sharedData, 'ml-1m', 'posters');
  const common = [
    '-q',
    'features',
    '-m',
    model,
    '-i',
    posters,
    '--extractor',
    'mobilenetv2-12-int8',
    '--id-offset',
    '-1',
  ];
  let started = performance.now();
  await finished(
    start([...common, '-o', join(rig.work, 'single.npy')], rig.context.sharedData),
    'single extraction',
  );
  const singleSeconds = secondsSince(started);
  const workers = rig.startWorkers(2);
  started = performance.now();
  await finished(
    start(
      [...common, '-o', join(rig.work, 'sharded.npy'), '--queue', rig.url, '--shards', '8'],
      rig.context.sharedData,
    ),
    'sharded extraction',
  );
  const shardedSeconds = secondsSince(started);
  await rig.stopWorkers(workers);
  const identical =
    readFileSync(join(rig.work, 'single.npy')).equals(
      readFileSync(join(rig.work, 'sharded.npy')),
    ) &&
    readFileSync(join(rig.work, 'single.npy.manifest.json'), 'utf8') ===
      readFileSync(join(rig.work, 'sharded.npy.manifest.json'), 'utf8');
  const images = (
    JSON.parse(readFileSync(join(rig.work, 'single.npy.manifest.json'), 'utf8')) as {
      images: number;
    }
  ).images;
  rig.context.log(
    `features: ${images} posters, single ${singleSeconds.toFixed(1)} s, 8 shards on 2 queue workers ${shardedSeconds.toFixed(1)} s, identical ${identical}`,
  );
  return { images, singleSeconds, shardedSeconds, identical };
}

export async function run(context: BenchContext): Promise<Record<string, unknown>> {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build first`);
  const redisServer = redisServerPath();
  if (redisServer === null)
    throw new Error('no redis-server (install Debian redis-server or set REDIS_SERVER)');
  const work = mkdtempSync(join(tmpdir(), 'advrec-bench-sweep-'));
  const sweepFile = join(work, 'grid.yaml');
  const sweepFile2 = join(work, 'grid-2-threads.yaml');
  writeFileSync(sweepFile, grid(1));
  writeFileSync(sweepFile2, grid(2));
  const redis = await startRedisServer(redisServer);
  const url = redis.url;
  // Each sweep file's first aggregate is the reference of every later execution of it (the
  // 2-thread grid resolves to other configs, so it has its own).
  const references = new Map<string, string>();
  const checkAggregate = (file: string, folder: string): boolean => {
    const text = readFileSync(join(folder, 'aggregate.json'), 'utf8');
    if (!references.has(file)) references.set(file, text);
    return text === references.get(file);
  };
  let folders = 0;
  const startWorkers = (n: number): Proc[] =>
    Array.from({ length: n }, () => start(['worker', '--queue', url], context.sharedData));
  const stopWorkers = async (workers: Proc[]): Promise<void> => {
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
  };
  try {
    const timed = async (
      label: string,
      file: string,
      flags: readonly string[],
      workers: number,
    ): Promise<{ seconds: number; equal: boolean; folder: string }> => {
      const folder = join(work, `sweep-${folders++}`);
      const pool = workers > 0 ? startWorkers(workers) : [];
      const started = performance.now();
      const proc = start(['sweep', file, '-o', folder, ...flags], context.sharedData);
      await finished(proc, label);
      const seconds = secondsSince(started);
      await stopWorkers(pool);
      const equal = checkAggregate(file, folder);
      context.log(`${label}: ${seconds.toFixed(1)} s${equal ? '' : ' (aggregate differs!)'}`);
      return { seconds, equal, folder };
    };
    const cases: { name: string; file: string; flags: string[]; workers: number }[] = [
      {
        name: 'pool, 1 worker, 2 training threads per run',
        file: sweepFile2,
        flags: [],
        workers: 0,
      },
      ...[1, 2, 3].map((n) => ({
        name: `pool, ${n} worker${n > 1 ? 's' : ''}`,
        file: sweepFile,
        flags: ['--workers', String(n)],
        workers: 0,
      })),
      ...[1, 2, 3].map((n) => ({
        name: `queue, ${n} worker process${n > 1 ? 'es' : ''}`,
        file: sweepFile,
        flags: ['--queue', url],
        workers: n,
      })),
    ];
    const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    let allEqual = true;
    let lastQueueFolder = '';
    // Interleaved repeats: a noisy moment hits every case alike.
    for (let repeat = 0; repeat < REPEATS; repeat++)
      for (const c of cases) {
        const r = await timed(c.name, c.file, c.flags, c.workers);
        allEqual &&= r.equal;
        samples.get(c.name)!.push(r.seconds);
        if (c.flags.includes('--queue')) lastQueueFolder = r.folder;
      }
    const wall = Object.fromEntries(
      [...samples].map(([name, s]) => [
        name,
        { medianSeconds: Number(median(s).toFixed(2)), runs: s.map((x) => Number(x.toFixed(2))) },
      ]),
    );
    const base = median(samples.get('pool, 1 worker')!);
    const speedups = Object.fromEntries(
      [...samples].map(([name, s]) => [name, Number((base / median(s)).toFixed(3))]),
    );
    const rig: Rig = {
      context,
      work,
      url,
      startWorkers,
      stopWorkers,
      folder: (prefix) => join(work, `${prefix}-${folders++}`),
    };
    const overhead = await jobOverhead(rig, sweepFile, lastQueueFolder);
    const { images, singleSeconds, shardedSeconds, identical } = await shardedExtraction(rig);
    return {
      protocol:
        'ML-100K, leave-one-out (latest) with a validation item per user, full ranking; MF K=64, 10 BPR + 5 APR epochs (FGM), validation ndcg@20 every 5 epochs; 3 epsilons x 3 lambdas x 2 seeds = 18 runs; 1 training thread per run unless said; Redis started here on 127.0.0.1',
      runs: 18,
      repeats: REPEATS,
      wallSeconds: wall,
      speedupOverOneWorker: speedups,
      aggregatesEqual: allEqual,
      overheadMsPerJob: overhead,
      overheadNote:
        "the same sweep into a copy of its finished folder (new job ids): every job finds its run folder finished and returns, so the time per job is the queue (or thread) round trip, the first job's module loading shared over 18, and the run-folder check",
      shardedFeatures: {
        images,
        model: 'mobilenetv2-12-int8',
        singleProcessSeconds: Number(singleSeconds.toFixed(1)),
        queueTwoWorkersEightShardsSeconds: Number(shardedSeconds.toFixed(1)),
        byteIdentical: identical,
      },
      note: 'Two cores: two one-thread runs at a time use both (faster than one run with two training threads, whose threads synchronise every batch); a third worker only shares them. On several machines each worker brings its own cores.',
    };
  } finally {
    redis.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
