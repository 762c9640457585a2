// A job runner for the pool tests: `{ kind: 'echo', value, fail?, exitCode? }` answers the
// value doubled and the thread it ran in, or fails with the given exit code.
import { threadId } from 'node:worker_threads';

export const jobRunner = {
  async runJob(job, signal) {
    if (signal.aborted) throw new Error('aborted');
    if (job.fail) {
      const error = new Error(`job ${job.value} failed on purpose`);
      error.exitCode = job.exitCode ?? 1;
      throw error;
    }
    return { kind: 'echo', status: 'done', seconds: 0, doubled: job.value * 2, threadId };
  },
  checkJob(value, where) {
    if (typeof value !== 'object' || value === null || value.kind !== 'echo')
      throw new Error(`${where}: not an echo job`);
    return value;
  },
  describeFailure(error) {
    return { message: error.message, exitCode: error.exitCode ?? 1 };
  },
};
