import { createRequire } from 'node:module';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { AdvrecError, ConfigError } from '@advrec/data';
import { attackCommand, evaluateCommand, recommendCommand, trainCommand } from './commands/run.js';
import type { TrainOptions } from './commands/run.js';
import {
  describeCommand,
  downloadCommand,
  listCommand,
  splitCommand,
} from './commands/datasets.js';
import { featuresCommand } from './commands/features.js';
import { reproduceAmrCommand, reproduceAprCommand } from './commands/reproduce.js';
import type { CommandContext } from './context.js';
import { EXIT_CODES, exitCodeOf } from './errors.js';
import { loadPlugins } from './pipeline.js';
import { Progress } from './progress.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function integer(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n))
      throw new InvalidArgumentError(`${flag} must be an integer, got "${value}"`);
    return n;
  };
}

function decimal(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n))
      throw new InvalidArgumentError(`${flag} must be a number, got "${value}"`);
    return n;
  };
}

function numbers(flag: string): (value: string) => number[] {
  return (value) =>
    value.split(',').map((part) => {
      const n = Number(part.trim());
      if (part.trim() === '' || !Number.isFinite(n))
        throw new InvalidArgumentError(
          `${flag} must be a comma-separated list of numbers, got "${value}"`,
        );
      return n;
    });
}

const words = (value: string): string[] =>
  value
    .split(',')
    .map((w) => w.trim())
    .filter((w) => w !== '');

/** The exit-code table printed by `advrec --help`. */
export const EXIT_CODE_HELP = `
Exit codes:
  0    success
  1    unexpected internal error (a bug: please report it)
  2    usage or config error (bad flag, invalid config field, unknown model/adversary/data set name)
  3    data error (missing or malformed file, unknown id, feature rows that do not match the items)
  4    download error (network, SHA-256 mismatch, unsafe archive member)
  130  interrupted (Ctrl-C); training saves checkpoints/last.ckpt after the current epoch
`;

/** I/O of one CLI invocation (tests pass their own streams). */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Aborted on Ctrl-C. */
  readonly signal?: AbortSignal;
  /** Force progress bars on or off (default: when stderr is a TTY). */
  readonly tty?: boolean;
}

/**
 * Builds the `advrec` program (commander). Its commands and options are the single source of
 * the CLI reference ({@link describeCli}).
 */
export function createProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  let context: CommandContext | null = null;
  const getContext = (): CommandContext => context!;
  const run =
    <A extends unknown[]>(action: (...args: A) => Promise<number> | number) =>
    async (...args: A): Promise<void> => {
      setExitCode(await action(...args));
    };
  const program = new Command('advrec')
    .description(
      'Train, evaluate and attack recommender models with adversarial learning (APR, AMR).',
    )
    .version(version, '-v, --version')
    .option('--json', 'print one machine-readable JSON document on stdout')
    .option('-q, --quiet', 'no progress output on stderr')
    .option(
      '--plugin <module>',
      'load a module that registers models or adversaries (repeatable)',
      collect,
      [],
    )
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXIT_CODE_HELP)
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride()
    .hook('preAction', async (root) => {
      const globals = root.opts<{ json?: boolean; quiet?: boolean; plugin: string[] }>();
      context = {
        stdout: io.stdout,
        progress: new Progress(io.stderr, {
          quiet: globals.quiet ?? false,
          ...(io.tty !== undefined ? { tty: io.tty } : {}),
        }),
        json: globals.json ?? false,
        signal: io.signal ?? new AbortController().signal,
      };
      await loadPlugins(globals.plugin);
    });

  const datasets = program
    .command('datasets')
    .description('list, describe, split and download data sets');
  datasets
    .command('list')
    .description('the public data sets the papers use, and where a copy is found')
    .action(run(() => listCommand(getContext())));
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
          'csv',
        ]),
      )
      .option('--test <file>', 'the test file of a given split')
      .addOption(
        new Option('--protocol <protocol>', 'split protocol').choices([
          'auto',
          'leave-one-out',
          'ratio',
          'given',
        ]),
      )
      .addOption(
        new Option('--order <order>', 'which interactions go to test').choices([
          'latest',
          'random',
          'temporal',
        ]),
      )
      .option(
        '--test-fraction <fraction>',
        'test fraction of the ratio protocol',
        decimal('--test-fraction'),
      )
      .option('--seed <seed>', 'split seed (default 42)', integer('--seed'))
      .option('--validation', 'also carve a validation split from train');
  splitOptions(
    datasets
      .command('describe')
      .description('load a data set (name or path), split it and print its statistics')
      .argument('<source>', 'data set name or path'),
  ).action(run((source: string, flags) => describeCommand(source, flags, getContext())));
  splitOptions(
    datasets
      .command('split')
      .description('split a data set and write train/validation/test as user-item lists')
      .argument('<source>', 'data set name or path')
      .requiredOption('-o, --out <folder>', 'output folder'),
  ).action(run((source: string, flags) => splitCommand(source, flags, getContext())));
  datasets
    .command('download')
    .description('download a public data set with SHA-256 verification and safe extraction')
    .argument('<name>', 'data set name (see datasets list)')
    .option('--dir <folder>', 'download folder (default $ADVREC_DATA_DIR or ~/.advrec/datasets)')
    .option('--mirror <url>', 'fetch the files from this base URL instead')
    .option('--sha256 <name=hex>', 'pin the checksum of a file (repeatable)', collect, [])
    .option('--skip-checksum', 'download files without a recorded checksum (prints their hashes)')
    .option('--force', 'replace an existing folder')
    .action(run((name: string, flags) => downloadCommand(name, flags, getContext())));

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
    .action(
      run((flags: TrainOptions) =>
        // Plugins given with the global --plugin are recorded in the run's config too.
        trainCommand(
          { ...flags, plugin: program.opts<{ plugin: string[] }>().plugin },
          getContext(),
        ),
      ),
    );

  const runOption = (command: Command): Command =>
    command
      .requiredOption('-r, --run <folder>', 'a run folder written by advrec train')
      .option('--checkpoint <file>', "a checkpoint other than the run's model.ckpt");
  runOption(
    program.command('evaluate').description('evaluate a trained model under either protocol'),
  )
    .addOption(
      new Option('--protocol <protocol>', 'full ranking or sampled negatives').choices([
        'full',
        'sampled',
      ]),
    )
    .option('--negatives <n>', 'negatives per test case (sampled protocol)', integer('--negatives'))
    .option('--cutoffs <list>', 'cutoffs K, e.g. 10,20', numbers('--cutoffs'))
    .option('--metrics <list>', 'metrics, e.g. hr,ndcg,recall,precision,mrr,map,auc', words)
    .addOption(new Option('--split <split>', 'evaluated split').choices(['test', 'validation']))
    .option('--seed <seed>', 'seed of generated negatives', integer('--seed'))
    .action(run((flags) => evaluateCommand(flags, getContext())));
  runOption(
    program
      .command('attack')
      .description('robustness sweep: adversarial vs random perturbations over an epsilon list'),
  )
    .option('--epsilons <list>', 'epsilons, e.g. 0.25,0.5,1,2', numbers('--epsilons'))
    .option('--adversaries <list>', 'adversaries, e.g. fgm,random', words)
    .option('--surfaces <list>', 'perturbed surfaces (default: every surface of the model)', words)
    .addOption(
      new Option('--protocol <protocol>', 'evaluation protocol').choices(['full', 'sampled']),
    )
    .option('--seed <seed>', 'seed of the sampled triples and random noise', integer('--seed'))
    .action(run((flags) => attackCommand(flags, getContext())));
  runOption(
    program
      .command('recommend')
      .description('top-K items for given users, excluding items they interacted with'),
  )
    .requiredOption('-u, --users <ids>', 'user ids as in the data files, comma-separated', words)
    .option('-k, --k <k>', 'list length', integer('--k'), 10)
    .addOption(
      new Option('--format <format>', 'output format').choices(['json', 'csv']).default('json'),
    )
    .option('--include-seen', 'do not exclude the items a user interacted with')
    .action(run((flags) => recommendCommand(flags, getContext())));

  program
    .command('features')
    .description('extract CNN image features (ONNX model) for a folder of item images, resumable')
    .requiredOption(
      '-m, --model <file>',
      'ONNX model file (ResNet-50 with its pooled output, or any CNN with --tensor)',
    )
    .requiredOption('-i, --images <folder>', 'folder of images named <item id>.jpg/.png/.webp')
    .requiredOption('-o, --out <file>', 'output .npy (a .manifest.json is written beside it)')
    .option('--tensor <name>', 'feature tensor (an output, or an intermediate tensor, pooled)')
    .option('--input <name>', 'input tensor name')
    .option('--batch-size <n>', 'images per inference batch (default 32)', integer('--batch-size'))
    .addOption(new Option('--dtype <dtype>', 'stored precision').choices(['float32', 'float16']))
    .option(
      '--id-offset <n>',
      'add this to numeric file names to get item ids (ML-1M posters: -1)',
      integer('--id-offset'),
    )
    .option('--threads <n>', 'onnxruntime intra-op threads', integer('--threads'))
    .option('--limit <n>', 'only the first n images (in numeric order)', integer('--limit'))
    .action(run((flags) => featuresCommand(flags, getContext())));

  const reproduce = program
    .command('reproduce')
    .description("the papers' pipelines, with a report");
  const reproduceOptions = (command: Command): Command =>
    command
      .option('--data <source>', 'data set name or path (default: the embedded synthetic data set)')
      .option('-o, --out <folder>', 'run folder')
      .option(
        '--epochs <n>',
        'maximum pre-training epochs (early stopping on validation)',
        integer('--epochs'),
      )
      .option(
        '--adversarial-epochs <n>',
        'adversarial epochs (and as many for the continued baseline)',
        integer('--adversarial-epochs'),
      )
      .option('--epsilon <eps>', 'epsilon of adversarial training', decimal('--epsilon'))
      .option('--lambda <weight>', 'lambda, the adversarial weight', decimal('--lambda'))
      .option('--epsilons <list>', 'epsilons of the robustness sweep', numbers('--epsilons'))
      .addOption(
        new Option('--protocol <protocol>', 'evaluation protocol').choices(['full', 'sampled']),
      )
      .option('--threads <n>', 'worker threads', integer('--threads'))
      .option('--set <path=value>', 'override any run-config field (repeatable)', collect, []);
  reproduceOptions(
    reproduce
      .command('apr')
      .description(
        'APR (SIGIR 2018): MF-BPR, then AMF vs BPR continued, robustness to FGM (Table 2, Figures 1 and 3)',
      ),
  ).action(run((flags) => reproduceAprCommand(flags, getContext())));
  reproduceOptions(
    reproduce
      .command('amr')
      .description(
        'AMR (TKDE): MF-BPR -> VBPR -> AMR vs VBPR continued, feature robustness (Table 3)',
      ),
  )
    .option('--features <file>', 'item feature .npy (from advrec features) for a real data set')
    .action(run((flags) => reproduceAmrCommand(flags, getContext())));

  for (const command of [program, ...allCommands(program)]) {
    command.exitOverride();
    command.configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  }
  return program;
}

function allCommands(command: Command): Command[] {
  return command.commands.flatMap((c) => [c, ...allCommands(c)]);
}

/**
 * Runs `advrec` with the given arguments (without `node` and the script); resolves to the
 * exit code. Errors are printed on stderr with their file, line or field; never thrown.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT_CODES.ok;
  const program = createProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
      )
        return EXIT_CODES.ok;
      return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
    }
    const code = exitCodeOf(error);
    if (ConfigError.isInstance(error)) io.stderr.write(`advrec: ${error.message}\n`);
    else if (AdvrecError.isInstance(error) || code !== EXIT_CODES.internal)
      io.stderr.write(`advrec: ${(error as Error).message}\n`);
    else io.stderr.write(`advrec: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
    return code;
  }
}

/** One command of the CLI reference. */
export interface CliCommandReference {
  readonly name: string;
  readonly description: string;
  readonly arguments: readonly {
    readonly name: string;
    readonly description: string;
    readonly required: boolean;
  }[];
  readonly options: readonly {
    readonly flags: string;
    readonly description: string;
    readonly defaultValue?: unknown;
    readonly choices?: readonly string[];
  }[];
}

/** The CLI reference, read from the program's own option definitions (for the docs). */
export function describeCli(): CliCommandReference[] {
  const noop: NodeJS.WritableStream = { write: () => true } as unknown as NodeJS.WritableStream;
  const program = createProgram({ stdout: noop, stderr: noop }, () => undefined);
  const walk = (command: Command, prefix: string): CliCommandReference[] => {
    const name = prefix ? `${prefix} ${command.name()}` : command.name();
    return [
      {
        name,
        description: command.description(),
        arguments: command.registeredArguments.map((a) => ({
          name: a.name(),
          description: a.description,
          required: a.required,
        })),
        options: command.options.map((o) => ({
          flags: o.flags,
          description: o.description,
          ...(o.defaultValue !== undefined &&
          !(Array.isArray(o.defaultValue) && o.defaultValue.length === 0)
            ? { defaultValue: o.defaultValue as unknown }
            : {}),
          ...(o.argChoices ? { choices: o.argChoices } : {}),
        })),
      },
      ...command.commands.flatMap((c) => walk(c, name)),
    ];
  };
  return walk(program, '');
}
