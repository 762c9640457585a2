import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: '@advrec/data',
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
  },
});
