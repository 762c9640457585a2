import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: '@advrec/example-consumer-project',
    include: ['src/**/*.test.ts'],
    testTimeout: 420_000,
    hookTimeout: 420_000,
  },
});
