import { defineConfig } from 'vitest/config';

/**
 * Root test config: every workspace package with a vitest.config.ts is a project, so
 * `vitest run` at the root runs the whole suite in one process pool.
 */
export default defineConfig({
  test: {
    projects: [
      'packages/*/vitest.config.ts',
      'apps/*/vitest.config.ts',
      'examples/*/vitest.config.ts',
      'bench/vitest.config.ts',
    ],
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
});
