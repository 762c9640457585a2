import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: '@advrec/sasrec',
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
  },
});
