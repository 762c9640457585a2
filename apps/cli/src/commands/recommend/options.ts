/**
 * `advrec recommend`: its options, defined without loading the command's implementation (it is
 * imported when the command runs), so that `advrec --help` starts fast.
 */
import { Option } from 'commander';
import type { CliCommand } from '../../command.js';
import { runFolderOptions } from '../../command.js';
import { integer, words } from '../../options.js';
import type { RecommendOptions } from './run.js';

/** `advrec recommend`: its options and action. */
export const recommendCli: CliCommand = {
  register(program, run) {
    runFolderOptions(
      program
        .command('recommend')
        .description(
          'top-K items for given users (or, for a sequential run, after a sequence of items), excluding items they interacted with',
        ),
    )
      .option('-u, --users <ids>', 'user ids as in the data files, comma-separated', words)
      .option(
        '--items <ids>',
        'sequential runs: item ids of a sequence, oldest first, comma-separated; the next items after it',
        words,
      )
      .option('-k, --k <k>', 'list length', integer('--k', 1), 10)
      .addOption(
        new Option('--format <format>', 'output format').choices(['json', 'csv']).default('json'),
      )
      .option('--include-seen', 'do not exclude the items a user interacted with')
      .action(
        run(async (context, flags: RecommendOptions) =>
          (await import('./run.js')).recommendCommand(flags, context),
        ),
      );
  },
};
