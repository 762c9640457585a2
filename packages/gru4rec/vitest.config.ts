import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: '@advrec/gru4rec',
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
  },
});
