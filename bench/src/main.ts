/**
 * `pnpm bench <name>`: runs bench/src/<name>.ts and writes bench/results/<name>.json.
 *
 * Each benchmark module exports `run(context)` returning its figures; this runner adds
 * the machine, the Node version, the git commit and the date, and writes the file
 * atomically. Run with no name to list the benchmarks.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '@advrec/data';
import type { BenchContext, BenchModule } from './context.js';
import { sharedDataDir } from './context.js';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter(
    (f) => f.endsWith('.ts') && !['main.ts', 'context.ts'].includes(f) && !f.endsWith('.test.ts'),
  )
  .map((f) => f.slice(0, -3))
  .sort();

async function main(): Promise<void> {
  const name = process.argv[2];
  if (!name || !available.includes(name)) {
    console.error(`usage: pnpm bench <name>\nbenchmarks: ${available.join(', ')}`);
    process.exitCode = name ? 2 : 0;
    return;
  }
  const module = (await import(`./${name}.ts`)) as BenchModule;
  const context: BenchContext = {
    sharedData: sharedDataDir(),
    log: (line) => console.log(`[${name}] ${line}`),
  };
  const started = new Date();
  const results = await module.run(context);
  const output = {
    benchmark: name,
    date: started.toISOString(),
    seconds: (Date.now() - started.getTime()) / 1000,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    commit: gitCommit(),
    results,
  };
  const resultsDir = join(here, '..', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${name}.json`);
  await writeFileAtomic(file, () => [JSON.stringify(output, null, 2) + '\n']);
  console.log(JSON.stringify(results, null, 2));
  console.log(`wrote ${file}`);
}

function gitCommit(): string | null {
  try {
    return execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return null;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
