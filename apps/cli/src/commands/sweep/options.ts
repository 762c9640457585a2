/**
 * `advrec sweep` and `advrec worker`: their options, defined without loading the commands'
 * implementations (imported when a command runs), so that `advrec --help` starts fast.
 */
import type { CliCommand } from '../../command.js';
import { integer } from '../../options.js';

/** `advrec sweep`: its options and action. */
export const sweepCli: CliCommand = {
  register(program, run) {
    program
      .command('sweep')
      .description(
        'run a grid of training runs (a sweep file: base config, axes, seeds) and aggregate them: tables, heat maps, the best configuration on validation',
      )
      .argument(
        '<file>',
        'sweep file, YAML or JSON: base (run-config file) or config, set, axes, seeds',
      )
      .option('-o, --out <folder>', 'sweep folder (default runs/sweep-<date>-<time>)')
      .option(
        '--workers <n>',
        'runs at once in the in-process pool (default 1; more run each in its own thread)',
        integer('--workers', 1),
      )
      .option(
        '--queue <url>',
        'a Redis URL (redis://host:6379): put the runs on a job queue served by `advrec worker` processes',
      )
      .option('--queue-name <name>', 'queue name (default advrec)')
      .option('--attempts <n>', 'tries per run on the queue (default 3)', integer('--attempts', 1))
      .option(
        '--queue-wait <seconds>',
        'how long a Redis server that stopped answering is waited for before giving up with exit code 6 (default 30)',
        integer('--queue-wait', 1),
      )
      .option('--force', 'write into a folder that holds another sweep')
      .action(
        run(async (context, file: string, flags) =>
          (await import('./run.js')).sweepCommand(file, flags, context),
        ),
      );
    program
      .command('worker')
      .description(
        'process sweep runs and feature shards from a Redis job queue (run it on any number of machines that share the file system)',
      )
      .requiredOption('--queue <url>', 'the Redis URL the sweep or features command was given')
      .option('--queue-name <name>', 'queue name (default advrec)')
      .option(
        '--concurrency <n>',
        'jobs at once in this process, each in its own thread (default 1)',
        integer('--concurrency', 1),
      )
      .option(
        '--lock-duration <ms>',
        "a job's lock: a dead worker's job goes to another worker after this (default 30000)",
        integer('--lock-duration', 1000),
      )
      .option(
        '--stalled-interval <ms>',
        'how often to look for jobs of dead workers (default 30000)',
        integer('--stalled-interval', 500),
      )
      .option(
        '--queue-wait <seconds>',
        'how long a Redis server that stopped answering is waited for before giving up with exit code 6 (default 30)',
        integer('--queue-wait', 1),
      )
      .action(
        run(async (context, flags) => (await import('./worker.js')).workerCommand(flags, context)),
      );
  },
};
