import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: '@advrec/example-plugin-sequence-mean',
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
  },
});
