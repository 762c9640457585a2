/**
 * `advrec evaluate`: its options, defined without loading the command's implementation (it is
 * imported when the command runs), so that `advrec --help` starts fast.
 */
import { Option } from 'commander';
import type { CliCommand } from '../../command.js';
import { runFolderOptions } from '../../command.js';
import { integer, numbers, words } from '../../options.js';
import type { EvaluateOptions } from './run.js';

/** `advrec evaluate`: its options and action. */
export const evaluateCli: CliCommand = {
  register(program, run) {
    runFolderOptions(
      program.command('evaluate').description('evaluate a trained model under either protocol'),
    )
      .addOption(
        new Option('--protocol <protocol>', 'full ranking or sampled negatives').choices([
          'full',
          'sampled',
        ]),
      )
      .option(
        '--negatives <n>',
        'negatives per test case (sampled protocol)',
        integer('--negatives', 1),
      )
      .option('--cutoffs <list>', 'cutoffs K, e.g. 10,20', numbers('--cutoffs'))
      .option('--metrics <list>', 'metrics, e.g. hr,ndcg,recall,precision,mrr,map,auc', words)
      .addOption(new Option('--split <split>', 'evaluated split').choices(['test', 'validation']))
      .option('--seed <seed>', 'seed of generated negatives', integer('--seed'))
      .action(
        run(async (context, flags: EvaluateOptions) =>
          (await import('./run.js')).evaluateCommand(flags, context),
        ),
      );
  },
};
