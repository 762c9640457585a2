import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = dirname(fileURLToPath(import.meta.url));

/** The package specifiers a module reaches through its relative imports (static analysis). */
function reachedPackages(entry: string): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^'"]*from\s+'([^']+)';/gm)) {
      if (m[1]) continue; // type-only imports load nothing
      const specifier = m[2]!;
      if (specifier.startsWith('.'))
        visit(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
      else packages.add(specifier);
    }
  };
  visit(join(src, entry));
  return packages;
}

describe('command modules load only what they need', () => {
  for (const command of ['attack', 'evaluate', 'recommend', 'datasets', 'features'])
    it(`advrec ${command} does not load the training engines (@advrec/trainer)`, () => {
      const packages = reachedPackages(join('commands', command, 'run.ts'));
      // Evaluation and robustness live in @advrec/metrics.
      if (command === 'attack' || command === 'evaluate')
        expect(packages.has('@advrec/metrics')).toBe(true);
      expect([...packages].filter((p) => p === '@advrec/trainer')).toEqual([]);
    });

  it('advrec train does (the check has teeth)', () => {
    expect(reachedPackages(join('commands', 'train', 'run.ts')).has('@advrec/trainer')).toBe(true);
  });
});
