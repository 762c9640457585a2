import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'advrec',
    include: ['src/**/*.test.ts'],
    testTimeout: 240_000,
  },
});
