/**
 * `advrec attack`: its options, defined without loading the command's implementation (it is
 * imported when the command runs), so that `advrec --help` starts fast.
 */
import { Option } from 'commander';
import type { CliCommand } from '../../command.js';
import { runFolderOptions } from '../../command.js';
import { integer, numbers, words } from '../../options.js';
import type { AttackOptions } from './run.js';

/** `advrec attack`: its options and action. */
export const attackCli: CliCommand = {
  register(program, run) {
    runFolderOptions(
      program
        .command('attack')
        .description('robustness sweep: adversarial vs random perturbations over an epsilon list'),
    )
      .option('--epsilons <list>', 'epsilons, e.g. 0.25,0.5,1,2', numbers('--epsilons'))
      .option('--adversaries <list>', 'adversaries, e.g. fgm,random', words)
      .option(
        '--surfaces <list>',
        'perturbed surfaces (default: every surface of the model)',
        words,
      )
      .addOption(
        new Option('--protocol <protocol>', 'evaluation protocol').choices(['full', 'sampled']),
      )
      .option('--seed <seed>', 'seed of the sampled triples and random noise', integer('--seed'))
      .action(
        run(async (context, flags: AttackOptions) =>
          (await import('./run.js')).attackCommand(flags, context),
        ),
      );
  },
};
