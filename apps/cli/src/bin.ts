#!/usr/bin/env node
/**
 * The `advrec` executable. The first Ctrl-C asks the running command to stop cleanly
 * (training ends after the current epoch and saves `checkpoints/last.ckpt`); a second one
 * exits at once. Checkpoints are written atomically, so neither leaves a partial file.
 */
import { isBrokenPipe, runCli } from './cli.js';
import { describeFailure } from './errors.js';

// An error thrown outside any awaited step (a plugin's timer, a rejected promise nobody
// awaited) still ends in one line naming its source, not a raw Node crash.
const fatal = (error: unknown): void => {
  // The reader of stdout went away (`advrec ... | head`): end quietly.
  if (isBrokenPipe(error)) process.exit(0);
  const failure = describeFailure(error);
  process.stderr.write(`${failure.line}\n`);
  process.exit(failure.code);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
process.stdout.on('error', fatal);

const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(130);
  process.stderr.write(
    '\nadvrec: interrupted; stopping after the current step (Ctrl-C again to quit now)\n',
  );
  controller.abort();
});

// SIGTERM (a process manager stopping a worker) stops like Ctrl-C: the running step ends cleanly.
process.on('SIGTERM', () => {
  if (controller.signal.aborted) process.exit(143);
  controller.abort();
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
});
process.exitCode = code;
// Worker pools close themselves; do not let a stray handle keep a finished command alive.
setTimeout(() => process.exit(code), 200).unref();
