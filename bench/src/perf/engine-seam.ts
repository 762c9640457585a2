/**
 * `pnpm bench engine-seam` (about 6 minutes): the engine redesign must not cost speed. This
 * checkout and a baseline checkout (`ADVREC_BASELINE`, default `../old-main`: the main before
 * the engine seam, installed and built) measured side by side in one run, interleaved, each
 * measurement in its own process (`bench/scripts/measure.mjs`):
 * - MF training on Gowalla (K=64, batch 512, Adagrad, 2 threads, deterministic): BPR and APR
 *   triples per second (`pnpm bench train`'s headline);
 * - full-ranking evaluation of every Gowalla user, top-20 (`pnpm bench eval`'s headline);
 * - the VBPR and AMR mini-batch step at ML-1M size (6,040 users, 3,706 items), K=64,
 *   1280-d features, batch 512: milliseconds per batch.
 * Medians over the rounds; `newOverBaseline` > 1 is faster for rates, < 1 for times.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '../context.js';
import type { BenchContext, BenchOptionSpec, BenchOptionValues } from '../context.js';
import type { BenchAbout } from '../context.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
export const about: BenchAbout = {
  kind: 'perf',
  what: 'a redesign against the main before it (`--baseline`, a checkout installed and built): MF BPR/APR training rate on Gowalla (2 threads), full-ranking evaluation of all Gowalla users, and the VBPR / AMR mini-batch step at ML-1M size (K=64, 1280-d features, batch 512); each measurement in its own process, sides alternating, 3 rounds',
  figures: 'per task `baseline`, `new`, `speedup` (> 1: the new code is faster), every sample',
};

/** Options (`pnpm bench engine-seam --baseline ../old-main --rounds 3`). */
export const options = {
  baseline: {
    description: 'a checkout of the main to compare against, installed and built',
    default: '../old-main',
  },
  rounds: { description: 'interleaved rounds (sides alternate)', default: 3 },
} satisfies BenchOptionSpec;

const TASKS = ['train-bpr', 'train-apr', 'eval', 'vbpr-step', 'amr-step'] as const;
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..', '..');

export async function run(context: BenchContext): Promise<Record<string, unknown>> {
  const { sharedData, log } = context;
  const o = context.options as BenchOptionValues<typeof options>;
  const ROUNDS = o.rounds;
  const baseline = resolve(root, o.baseline);
  if (!existsSync(join(baseline, 'packages', 'trainer', 'dist', 'index.js')))
    throw new Error(
      `no built baseline checkout at ${baseline}: git worktree add ../old-main <commit>, install and build it there, or pass --baseline <folder>`,
    );
  const commit = (dir: string): string =>
    execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const sides = { baseline, new: root } as const;
  const samples: Record<string, Record<string, Record<string, number>[]>> = {};
  for (let round = 0; round < ROUNDS; round++)
    for (const task of TASKS)
      for (const [side, dir] of round % 2
        ? Object.entries(sides).reverse()
        : Object.entries(sides)) {
        const out = execFileSync(
          process.execPath,
          [join(root, 'bench', 'scripts', 'measure.mjs'), dir, task, sharedData, String(round)],
          { encoding: 'utf8', maxBuffer: 1 << 24 },
        );
        const figures = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>;
        ((samples[task] ??= {})[side] ??= []).push(figures);
        log(`round ${round} ${task} ${side}: ${JSON.stringify(figures)}`);
      }
  const summary: Record<string, unknown> = {};
  const figureOf: Record<(typeof TASKS)[number], [string, 'rate' | 'time']> = {
    'train-bpr': ['triplesPerSecond', 'rate'],
    'train-apr': ['triplesPerSecond', 'rate'],
    eval: ['seconds', 'time'],
    'vbpr-step': ['stepMilliseconds', 'time'],
    'amr-step': ['stepMilliseconds', 'time'],
  };
  for (const task of TASKS) {
    const [figure, kind] = figureOf[task];
    const med = (side: string): number => median(samples[task]![side]!.map((s) => s[figure]!));
    const b = med('baseline');
    const n = med('new');
    summary[task] = {
      figure,
      baseline: b,
      new: n,
      // > 1: the new code is faster.
      speedup: kind === 'rate' ? n / b : b / n,
      samples: samples[task],
    };
  }
  return {
    baseline: { path: baseline, commit: commit(baseline) },
    new: { commit: commit(root) },
    rounds: ROUNDS,
    protocol:
      'each measurement in a fresh process, sides alternating in order every round; MF: 1 warm-up + 2 epochs, median rate; eval: 1 warm-up + 3 runs, median; VBPR/AMR: 100 batches of 512 ML-1M pairs per epoch, 1 warm-up + 2 epochs, median epoch time / batches',
    ...summary,
  };
}
