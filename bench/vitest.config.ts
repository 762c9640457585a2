import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: '@advrec/bench',
    include: ['src/**/*.test.ts'],
  },
});
