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
      'scripts/vitest.config.ts',
    ],
    reporters: ['default', './scripts/summary-reporter.ts'],
    // Two test files at a time on the 2-core machines (vitest's default there is one): most
    // of the suite waits on child processes (CLI, npm, Chromium, Redis). Measured on a clean
    // clone, 2026-11-29: the whole suite in 587 s with one worker, 433 s with two.
    maxWorkers: 2,
  },
});
