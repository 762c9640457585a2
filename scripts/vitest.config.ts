import { defineProject } from 'vitest/config';

/** Repository-wide checks (the import graph). */
export default defineProject({
  test: {
    name: 'architecture',
    include: ['*.test.ts'],
    testTimeout: 120_000,
  },
});
