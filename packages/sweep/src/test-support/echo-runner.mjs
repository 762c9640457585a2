// A job runner for the pool tests: `{ kind: 'echo', value, fail?, exitCode? }` answers the
// value doubled and the thread it ran in, or fails with the given exit code; with `timer`, it
// throws from a timer (outside the job's promise, as a misbehaving plugin would).
import { setTimeout } from 'node:timers';
import { threadId } from 'node:worker_threads';

export const jobRunner = {
  async runJob(job, signal) {
    if (signal.aborted) throw new Error('aborted');
    if (job.timer) {
      setTimeout(() => {
        const error = new Error(`job ${job.value} threw from a timer`);
        error.exitCode = 2;
        throw error;
      }, 1);
      return new Promise(() => undefined);
    }
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
    return {
      message: `described in the job's thread: ${error.message}`,
      exitCode: error.exitCode ?? 1,
    };
  },
};
