import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: '@advrec/losses',
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
  },
});
