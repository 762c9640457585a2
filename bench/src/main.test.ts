import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'prettier';
import { describe, expect, it } from 'vitest';
import { parseBenchOptions } from './context.js';
import { listBenchmarks, readmeTables, withTables } from './main.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('pnpm bench', () => {
  it('lists only perf and quality benchmarks, each with its about', async () => {
    const benchmarks = listBenchmarks();
    expect(new Set(benchmarks.map((b) => b.kind))).toEqual(new Set(['perf', 'quality']));
    // The closed investigations are studies, not benchmarks.
    for (const study of ['amr-grid', 'amr-long', 'vbpr-diagnosis', 'vbpr-tuning'])
      expect(benchmarks.map((b) => b.name)).not.toContain(study);
    for (const b of benchmarks) {
      const module = (await import(b.file)) as { about?: { kind: string; what: string } };
      expect(module.about?.kind, b.name).toBe(b.kind);
      expect(module.about?.what.length, b.name).toBeGreaterThan(20);
    }
  }, 120_000);

  it('the README tables are the ones generated from the modules', async () => {
    const file = join(here, '..', 'README.md');
    const committed = readFileSync(file, 'utf8');
    const generated = withTables(committed, await readmeTables());
    const options = { parser: 'markdown', proseWrap: 'preserve' as const, printWidth: 100 };
    expect(await format(generated, options)).toBe(await format(committed, options));
  }, 120_000);

  it('parses typed options and names what is wrong', () => {
    const spec = {
      rounds: { description: 'rounds', default: 3 },
      epsilons: { description: 'eps', default: [0.5] },
      parts: { description: 'parts', default: ['mf'], choices: ['mf', 'deep'] },
      quick: { description: 'quick', default: false },
      baseline: { description: 'folder', default: '../old-main' },
    };
    expect(
      parseBenchOptions(spec, ['--rounds', '5', '--epsilons=0.1,1', '--parts', 'deep', '--quick']),
    ).toEqual({
      rounds: 5,
      epsilons: [0.1, 1],
      parts: ['deep'],
      quick: true,
      baseline: '../old-main',
    });
    expect(() => parseBenchOptions(spec, ['--round', '5'])).toThrow(
      /unknown option --round; .*--rounds/,
    );
    expect(() => parseBenchOptions(spec, ['--rounds', 'x'])).toThrow(/--rounds must be a number/);
    expect(() => parseBenchOptions(spec, ['--parts', 'gpu'])).toThrow(
      /"gpu" is not one of mf, deep/,
    );
    expect(() => parseBenchOptions(spec, ['--rounds'])).toThrow(/--rounds needs a value/);
  });
});
