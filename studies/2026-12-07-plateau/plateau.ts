/**
 * The plateau study (issue 35): on Gowalla with Cornac's hyper-parameters, the C loop
 * (bpr-ref) was reported at test Recall@20 / NDCG@20 0.1575 / 0.128 and advrec's per-triple
 * SGD at 0.1542 / 0.1255. Same loss, same update, same rate; this separates what is not the
 * same, each difference switched alone, every arm at the same epochs and evaluated the same
 * way (test file, full ranking, every original training item excluded, advrec's evaluator):
 *
 * - `c-full`: `plateau.c` (bpr-ref's loop, factors written out) on the whole train file.
 * - `c-carved`: the same loop on train minus one random validation interaction per user
 *   (advrec's early-stopping carve-out, seed 1, as `pnpm bench time-to-quality`).
 * - `advrec-full` / `advrec-carved`: advrec's `sgd-triples` engine on the same two sets.
 * - `c-full-normal-init`: the C loop with advrec's initialisation (truncated normal, std
 *   0.01) instead of Cornac's uniform +-0.01.
 * - `c-full-1thread`: the C loop on one thread (no Hogwild interleaving).
 * - `advrec-sample10k`: advrec on train minus one validation interaction from each of 10,000
 *   sampled users only (`holdOutValidation`'s `users`), the others keeping all their pairs.
 *
 * Run: `pnpm bench --study studies/2026-12-07-plateau` (PLATEAU_EPOCHS, default "300,600";
 * PLATEAU_SEEDS, default 2; PLATEAU_ARMS, a comma-separated subset of the arms, default all).
 * Needs gcc.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { givenSplit, holdOutValidation, readUserItemLists, type Dataset } from '@advrec/data';
import { evaluateFullRanking, factorizedScorer } from '@advrec/metrics';
import { MatrixFactorization } from '@advrec/models';
import { Trainer } from '@advrec/trainer';
import type { BenchContext } from '../../bench/src/context.js';

const K = 64;
const here = dirname(fileURLToPath(import.meta.url));

interface Point {
  readonly epoch: number;
  readonly recall: number;
  readonly ndcg: number;
  readonly seconds: number;
}

async function evaluate(
  dataset: Dataset,
  userFactors: Float32Array,
  itemFactors: Float32Array,
  itemBias: Float32Array,
): Promise<{ recall: number; ndcg: number }> {
  const result = await evaluateFullRanking(
    factorizedScorer({ userFactors, itemFactors, dimension: K, itemBias }),
    dataset,
    { cutoffs: [20], metrics: ['recall', 'ndcg'] },
  );
  return { recall: result.metrics['recall@20']!, ndcg: result.metrics['ndcg@20']! };
}

/** The training pairs as a LightGCN list file with dense ids. */
async function writeLists(dataset: Dataset, file: string): Promise<void> {
  const lines: string[] = [];
  for (let u = 0; u < dataset.numUsers; u++) lines.push([u, ...dataset.train.row(u)].join(' '));
  await writeFile(file, lines.join('\n') + '\n');
}

async function runC(
  binary: string,
  dataset: Dataset,
  trainFile: string,
  options: { threads: number; seed: number; init: 'uniform' | 'normal'; epochs: number[] },
  directory: string,
): Promise<Point[]> {
  const out = join(directory, `c-${options.threads}-${options.seed}-${options.init}`);
  const started = performance.now();
  const stamps: number[] = [];
  const log = execFileSync(
    binary,
    [
      trainFile,
      String(K),
      String(Math.max(...options.epochs)),
      String(options.threads),
      String(options.seed),
      options.init,
      out,
      options.epochs.join(','),
      String(dataset.numUsers),
      String(dataset.numItems),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  stamps.push((performance.now() - started) / 1000);
  const points: Point[] = [];
  for (const epoch of options.epochs) {
    if (!log.includes(`${out}-e${epoch}.bin`)) throw new Error(`plateau.c wrote no epoch ${epoch}`);
    const bytes = readFileSync(`${out}-e${epoch}.bin`);
    const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const nu = dataset.numUsers * K;
    const ni = dataset.numItems * K;
    const metrics = await evaluate(
      dataset,
      all.slice(0, nu),
      all.slice(nu, nu + ni),
      all.slice(nu + ni, nu + ni + dataset.numItems),
    );
    points.push({ epoch, ...metrics, seconds: Math.round(stamps[0]! * 10) / 10 });
  }
  return points;
}

async function runAdvrec(dataset: Dataset, seed: number, epochs: number[]): Promise<Point[]> {
  const model = new MatrixFactorization(dataset, { embeddingSize: K, seed, itemBias: true });
  const trainer = await Trainer.create(model, dataset, {
    seed,
    threads: 2,
    algorithm: 'sgd-triples',
    optimizer: { name: 'sgd', learningRate: 0.05 },
    l2: 0.001,
  });
  const points: Point[] = [];
  const started = performance.now();
  let done = 0;
  try {
    for (const epoch of epochs) {
      await trainer.runPhase({ epochs: epoch - done, adversarial: false, validate: false });
      done = epoch;
      const seconds = (performance.now() - started) / 1000;
      const f = model.factors();
      points.push({
        epoch,
        ...(await evaluate(dataset, f.userFactors, f.itemFactors, f.itemBias!)),
        seconds: Math.round(seconds * 10) / 10,
      });
    }
  } finally {
    await trainer.close();
  }
  return points;
}

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const epochs = (process.env['PLATEAU_EPOCHS'] ?? '300,600').split(',').map(Number);
  const seeds = Number(process.env['PLATEAU_SEEDS'] ?? 2);
  const full = givenSplit(
    await readUserItemLists(join(sharedData, 'gowalla', 'train.txt')),
    await readUserItemLists(join(sharedData, 'gowalla', 'test.txt')),
  );
  const carved = holdOutValidation(full, { seed: 1, order: 'random' });
  const sample10k = holdOutValidation(full, { seed: 1, order: 'random', users: 10_000 });
  const only = process.env['PLATEAU_ARMS']?.split(',');
  const wanted = (arm: string): boolean => !only || only.includes(arm);
  const directory = await mkdtemp(join(tmpdir(), 'advrec-plateau-'));
  const binary = join(directory, 'plateau');
  execFileSync('gcc', [
    '-O3',
    '-march=native',
    '-fopenmp',
    '-o',
    binary,
    join(here, 'plateau.c'),
    '-lm',
  ]);
  const fullFile = join(directory, 'full.txt');
  const carvedFile = join(directory, 'carved.txt');
  await writeLists(full, fullFile);
  await writeLists(carved, carvedFile);
  const arms: Record<string, Point[][]> = {};
  const record = (arm: string, points: Point[]): void => {
    (arms[arm] ??= []).push(points);
    const last = points[points.length - 1]!;
    log(
      `${arm}: ${points.map((p) => `e${p.epoch} ${p.recall.toFixed(4)}/${p.ndcg.toFixed(4)}`).join(', ')} (${last.seconds} s)`,
    );
  };
  try {
    for (let seed = 0; seed < seeds; seed++) {
      const c = { threads: 2, seed, init: 'uniform' as const, epochs };
      if (wanted('c-full')) record('c-full', await runC(binary, full, fullFile, c, directory));
      if (wanted('c-carved'))
        record('c-carved', await runC(binary, carved, carvedFile, c, directory));
      if (wanted('advrec-full')) record('advrec-full', await runAdvrec(full, seed + 1, epochs));
      if (wanted('advrec-carved'))
        record('advrec-carved', await runAdvrec(carved, seed + 1, epochs));
      if (wanted('advrec-sample10k'))
        record('advrec-sample10k', await runAdvrec(sample10k, seed + 1, epochs));
    }
    const c0 = { threads: 2, seed: 0, init: 'normal' as const, epochs };
    if (wanted('c-full-normal-init'))
      record('c-full-normal-init', await runC(binary, full, fullFile, c0, directory));
    if (wanted('c-full-1thread'))
      record(
        'c-full-1thread',
        await runC(binary, full, fullFile, { ...c0, init: 'uniform', threads: 1 }, directory),
      );
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  const summary: Record<string, unknown> = {};
  for (const [arm, runs] of Object.entries(arms)) {
    summary[arm] = epochs.map((epoch, e) => {
      const at = runs.map((points) => points[e]!);
      const mean = (pick: (p: Point) => number): number =>
        Math.round((at.reduce((s, p) => s + pick(p), 0) / at.length) * 1e4) / 1e4;
      return {
        epoch,
        runs: at.length,
        recall20: mean((p) => p.recall),
        ndcg20: mean((p) => p.ndcg),
        perRun: at.map((p) => [Math.round(p.recall * 1e4) / 1e4, Math.round(p.ndcg * 1e4) / 1e4]),
      };
    });
  }
  return {
    dataset: 'gowalla (LightGCN split), K=64, lr 0.05, L2 0.001, item bias, Cornac loop',
    evaluation:
      'test file, full ranking, every original training item excluded (validation included), top-20',
    epochs,
    seeds,
    arms: summary,
  };
}
