/**
 * `advrec datasets`: its options, defined without loading the command's implementation (it is
 * imported when the command runs), so that `advrec --help` starts fast.
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import type { CliCommand } from '../../command.js';
import { collect, decimal, integer } from '../../options.js';
import { DOWNLOAD_IDLE_TIMEOUT_SECONDS } from '../../options.js';

/** `advrec datasets`: its options and action. */
export const datasetsCli: CliCommand = {
  register(program, run) {
    const datasets = program
      .command('datasets')
      .description('list, describe, split and download data sets');
    datasets
      .command('list')
      .description('the public data sets the papers use, and where a copy is found')
      .action(run(async (context) => (await import('./run.js')).listCommand(context)));
    const splitOptions = (command: Command): Command =>
      command
        .addOption(
          new Option('--format <format>', 'file format').choices([
            'auto',
            'movielens-100k',
            'movielens-dat',
            'user-item-lists',
            'ncf',
            'amr',
            'mmrec',
            'csv',
          ]),
        )
        .option('--test <file>', 'the test file of a given split (user-item-lists or csv)')
        .option(
          '--validation-file <file>',
          'the validation file of a given split (default for user-item-lists: valid.txt or validation.txt beside train.txt)',
        )
        .addOption(
          new Option(
            '--encoding <encoding>',
            'text encoding of a csv file (default utf-8)',
          ).choices(['utf-8', 'latin1']),
        )
        .addOption(
          new Option('--protocol <protocol>', 'split protocol').choices([
            'auto',
            'leave-one-out',
            'ratio',
            'given',
          ]),
        )
        .addOption(
          new Option(
            '--order <order>',
            'which interactions go to test (auto: by timestamp when there are timestamps, else random)',
          ).choices(['auto', 'latest', 'random', 'temporal']),
        )
        .option(
          '--test-fraction <fraction>',
          'test fraction of the ratio protocol',
          decimal('--test-fraction'),
        )
        .option('--seed <seed>', 'split seed (default 42)', integer('--seed'));
    splitOptions(
      datasets
        .command('describe')
        .description('load a data set (name or path), split it and print its statistics')
        .argument('<source>', 'data set name or path'),
    )
      .option(
        '--no-validation',
        'no validation split (default: as train reads it, the given validation file when there is one, else one interaction per user carved from train)',
      )
      .action(
        run(async (context, source: string, flags) =>
          (await import('./run.js')).describeCommand(source, flags, context),
        ),
      );
    splitOptions(
      datasets
        .command('split')
        .description('split a data set and write train/validation/test as user-item lists')
        .argument('<source>', 'data set name or path')
        .requiredOption('-o, --out <folder>', 'output folder')
        .option('--force', 'replace a split already in the output folder'),
    )
      .option(
        '--validation',
        'also write a validation split (validation.txt): the given validation file when there is one, else one interaction per user carved from train',
      )
      .action(
        run(async (context, source: string, flags) =>
          (await import('./run.js')).splitCommand(source, flags, context),
        ),
      );
    datasets
      .command('download')
      .description('download a public data set with SHA-256 verification and safe extraction')
      .argument('<name>', 'data set name (see datasets list)')
      .option(
        '--dir <folder>',
        'download folder (default $ADVREC_DATA_DIR, else $XDG_CACHE_HOME/advrec/datasets)',
      )
      .option('--mirror <url>', 'fetch the files from this base URL instead')
      .option('--sha256 <name=hex>', 'pin the checksum of a file (repeatable)', collect, [])
      .option('--skip-checksum', 'download files without a recorded checksum (prints their hashes)')
      .option('--force', 'replace an existing folder')
      .option(
        '--timeout <seconds>',
        `give up after this many seconds without data (default ${DOWNLOAD_IDLE_TIMEOUT_SECONDS})`,
        decimal('--timeout'),
      )
      .option(
        '--max-bytes <n>',
        'most bytes one file may bring (default: its published size when pinned, else 1 GiB)',
        integer('--max-bytes', 1),
      )
      .action(
        run(async (context, name: string, flags) =>
          (await import('./run.js')).downloadCommand(name, flags, context),
        ),
      );
  },
};
