import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: '@advrec/features',
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
  },
});
