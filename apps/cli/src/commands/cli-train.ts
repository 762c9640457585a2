/**
 * `advrec train`: its options, defined without loading the command's implementation (it is
 * imported when the command runs), so that `advrec --help` starts fast.
 */
import type { CliCommand } from '../command.js';
import { collect } from '../options.js';
import type { TrainOptions } from './train.js';

/** `advrec train`: its options and action. */
export const trainCli: CliCommand = {
  register(program, run) {
    program
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
      )
      .option('--data <source>', 'shorthand for --set data.source=...')
      .option('--model <name>', 'shorthand for --set model.name=...')
      .option('--epochs <n>', 'shorthand for --set training.epochs=...')
      .option('--adversarial-epochs <n>', 'shorthand for --set training.adversarialEpochs=...')
      .option('--adversary <name>', 'shorthand for --set training.adversarial.adversary=...')
      .option('--epsilon <eps>', 'shorthand for --set training.adversarial.epsilon=...')
      .option('--lambda <weight>', 'shorthand for --set training.adversarial.adversarialWeight=...')
      .option('--threads <n>', 'shorthand for --set training.threads=...')
      .option('-o, --out <folder>', 'run folder (default runs/train-<date>-<time>)')
      .option('--force', 'write into a folder that holds other files or a run of another config')
      .option(
        '--resume <folder>',
        'continue a stopped run from its checkpoints/last.ckpt, exactly (same config, data and schedule)',
      )
      .action(
        run(async (context, flags: TrainOptions) =>
          // Plugins given with the global --plugin are recorded in the run's config too.
          (await import('./train.js')).trainCommand(
            { ...flags, plugin: program.opts<{ plugin: string[] }>().plugin },
            context,
          ),
        ),
      );
  },
};
