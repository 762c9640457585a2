/**
 * `advrec train`: its options, defined without loading the command's implementation (it is
 * imported when the command runs), so that `advrec --help` starts fast.
 */
import type { CliCommand } from '../../command.js';
import { collect } from '../../options.js';
import { addShorthands } from '../../shorthands.js';
import type { ShorthandKey } from '../../shorthands.js';

/** The shorthand flags of `advrec train` (each a `--set` of one run-config field). */
export const TRAIN_SHORTHANDS = [
  'data',
  'model',
  'epochs',
  'adversarialEpochs',
  'adversary',
  'epsilon',
  'lambda',
  'threads',
] as const satisfies readonly ShorthandKey[];
import type { TrainOptions } from './run.js';

/** `advrec train`: its options and action. */
export const trainCli: CliCommand = {
  register(program, run) {
    const command = program
      .command('train')
      .description(
        'train a model from a config (YAML/JSON), evaluate it, write a run folder with a report',
      )
      .option(
        '-c, --config <file>',
        'run config, YAML or JSON (schema: advrec/run-config.schema.json)',
      )
      .option(
        '--set <path=value>',
        'override any config field, e.g. training.adversarial.epsilon=0.5 (repeatable)',
        collect,
        [],
      );
    addShorthands(command, TRAIN_SHORTHANDS)
      .option('-o, --out <folder>', 'run folder (default runs/train-<date>-<time>)')
      .option('--force', 'write into a folder that holds other files or a run of another config')
      .option(
        '--resume <folder>',
        'continue a stopped run from its checkpoints/last.ckpt, exactly (same config, data and schedule)',
      )
      .action(
        run(async (context, flags: TrainOptions) =>
          // Plugins given with the global --plugin are recorded in the run's config too.
          (await import('./run.js')).trainCommand(
            { ...flags, plugin: program.opts<{ plugin: string[] }>().plugin },
            context,
          ),
        ),
      );
  },
};
