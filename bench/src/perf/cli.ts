/**
 * `pnpm bench cli`: how fast the `advrec` command answers. Wall time of `advrec --help`,
 * `advrec train --help` and `advrec --version` (a fresh `node apps/cli/dist/bin.js` process
 * each time, as an installed `advrec` runs), 10 runs each after one warm-up, median and
 * spread; beside it a bare `node -e 0`, the floor any Node command pays. Target: `--help`
 * median <= 0.3 s.
 */
import { spawnSync } from 'node:child_process';
import { ADVREC_BIN, median, type BenchContext } from '../context.js';
import type { BenchAbout } from '../context.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
export const about: BenchAbout = {
  kind: 'perf',
  what: 'how fast the installed `advrec` answers: `advrec --help`, `advrec train --help`, `advrec --version` (a fresh `node apps/cli/dist/bin.js` each time), 10 interleaved runs after a warm-up, beside a bare `node -e 0`',
  figures:
    '`summary.*.medianSeconds` (and min, max), `target.met` (`--help` median <= 0.3 s), every sample',
};

const RUNS = 10;
const bin = ADVREC_BIN;

function seconds(args: string[]): number {
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { encoding: 'utf8' });
  const elapsed = (performance.now() - started) / 1000;
  if (result.status !== 0)
    throw new Error(`node ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return elapsed;
}

export async function run(context: BenchContext): Promise<Record<string, unknown>> {
  const cases: Record<string, string[]> = {
    'node -e 0': ['-e', '0'],
    'advrec --help': [bin, '--help'],
    'advrec train --help': [bin, 'train', '--help'],
    'advrec --version': [bin, '--version'],
  };
  const samples: Record<string, number[]> = {};
  for (const [name, args] of Object.entries(cases)) {
    seconds(args); // warm-up (file cache)
    samples[name] = [];
  }
  // Interleaved, so that a noisy moment hits every case alike.
  for (let round = 0; round < RUNS; round++)
    for (const [name, args] of Object.entries(cases)) samples[name]!.push(seconds(args));
  const summary = Object.fromEntries(
    Object.entries(samples).map(([name, s]) => [
      name,
      {
        medianSeconds: Number(median(s).toFixed(3)),
        minSeconds: Number(Math.min(...s).toFixed(3)),
        maxSeconds: Number(Math.max(...s).toFixed(3)),
      },
    ]),
  );
  for (const [name, s] of Object.entries(summary))
    context.log(`${name}: median ${s.medianSeconds} s (${s.minSeconds}-${s.maxSeconds})`);
  const help = summary['advrec --help']!.medianSeconds;
  return {
    runs: RUNS,
    summary,
    samples,
    target: { helpMedianSeconds: 0.3, met: help <= 0.3 },
    note: 'Each command is a fresh node process running apps/cli/dist/bin.js (what an installed advrec runs; `pnpm advrec` adds pnpm and turbo on top). Options are declared without loading the commands; a command imports its implementation when it runs.',
  };
}
