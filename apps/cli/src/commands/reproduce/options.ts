/**
 * `advrec reproduce`: its options, defined without loading the command's implementation (it is
 * imported when the command runs), so that `advrec --help` starts fast.
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import type { CliCommand } from '../../command.js';
import { collect, decimal, integer, numbers } from '../../options.js';
import { addShorthands } from '../../shorthands.js';
import type { ShorthandKey } from '../../shorthands.js';

/** The shorthand flags of `advrec reproduce atsrec`. */
const ATSREC_SHORTHANDS: readonly ShorthandKey[] = [
  'data',
  'model',
  'epochs',
  'adversarialEpochs',
  'epsilon',
  'lambda',
  'epsilons',
];

/** `advrec reproduce`: its options and action. */
export const reproduceCli: CliCommand = {
  register(program, run) {
    const reproduce = program
      .command('reproduce')
      .description("the papers' pipelines, with a report");
    const reproduceOptions = (command: Command): Command =>
      command
        .option(
          '--data <source>',
          'data set name or path (default: the embedded synthetic data set)',
        )
        .option('-o, --out <folder>', 'run folder')
        .option('--force', 'write into a folder that holds other files or a run of another config')
        .option(
          '--epochs <n>',
          'maximum pre-training epochs (early stopping on validation)',
          integer('--epochs', 0),
        )
        .option(
          '--adversarial-epochs <n>',
          'adversarial epochs (and as many for the continued baseline)',
          integer('--adversarial-epochs', 0),
        )
        .option('--epsilon <eps>', 'epsilon of adversarial training', decimal('--epsilon'))
        .option('--lambda <weight>', 'lambda, the adversarial weight', decimal('--lambda'))
        .option('--epsilons <list>', 'epsilons of the robustness sweep', numbers('--epsilons'))
        .addOption(
          new Option('--protocol <protocol>', 'evaluation protocol').choices(['full', 'sampled']),
        )
        .option('--threads <n>', 'worker threads', integer('--threads', 1))
        .option('--set <path=value>', 'override any run-config field (repeatable)', collect, []);
    reproduceOptions(
      reproduce
        .command('apr')
        .description(
          'APR (SIGIR 2018): MF-BPR, then AMF vs BPR continued, robustness to FGM (Table 2, Figures 1 and 3)',
        ),
    ).action(
      run(async (context, flags) => (await import('./run.js')).reproduceAprCommand(flags, context)),
    );
    reproduceOptions(
      reproduce
        .command('amr')
        .description(
          'AMR (TKDE): MF-BPR -> VBPR -> AMR vs VBPR continued, feature robustness (Table 3)',
        ),
    )
      .option('--features <file>', 'item feature .npy (from advrec features) for a real data set')
      .option(
        '--tune',
        "choose epsilon and lambda on validation with the AMR paper's grid (epsilon 0.01/0.1/1/10 at lambda 1, then lambda 0.01/0.1/1/10): 8 to 10 AMR runs instead of one",
      )
      .action(
        run(async (context, flags) =>
          (await import('./run.js')).reproduceAmrCommand(flags, context),
        ),
      );
    const atsrec = reproduce
      .command('atsrec')
      .description(
        'ATSRec (ICME 2024): SASRec (or GRU4Rec), then ATSRec vs the model continued, item-embedding diversity, robustness to FGM on item embeddings',
      )
      .option('-o, --out <folder>', 'run folder')
      .option('--force', 'write into a folder that holds other files or a run of another config');
    addShorthands(atsrec, ATSREC_SHORTHANDS, {
      data: {
        description:
          "interaction file, `user item [timestamp]`, a user's lines in time order when without timestamps (default: an embedded synthetic set)",
      },
      model: { description: 'sequential model', choices: ['sasrec', 'gru4rec'] },
      epochs: {
        description: 'maximum epochs (early stopping on validation)',
        parse: integer('--epochs', 0),
      },
      adversarialEpochs: {
        description: 'ATSRec epochs (and as many for the continued baseline)',
        parse: integer('--adversarial-epochs', 1),
      },
      epsilon: {
        description: 'ATSRec epsilon, relative to the mean item-row norm (default 0.1)',
        parse: decimal('--epsilon'),
      },
      lambda: { description: 'lambda, the adversarial weight', parse: decimal('--lambda') },
      epsilons: {
        description: 'FGM attack epsilons, relative to the mean item-row norm',
        parse: numbers('--epsilons'),
      },
    })
      .option('--set <path=value>', 'override any run-config field (repeatable)', collect, [])
      .action(
        run(async (context, flags) =>
          (await import('../train/sequential.js')).reproduceAtsrecCommand(flags, context),
        ),
      );
  },
};
