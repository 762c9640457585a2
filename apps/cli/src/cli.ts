import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import type { CliCommand, Runner } from './command.js';
import { attackCli } from './commands/attack/options.js';
import { datasetsCli } from './commands/datasets/options.js';
import { evaluateCli } from './commands/evaluate/options.js';
import { featuresCli } from './commands/features/options.js';
import { recommendCli } from './commands/recommend/options.js';
import { exportCli } from './commands/export/options.js';
import { reproduceCli } from './commands/reproduce/options.js';
import { sweepCli } from './commands/sweep/options.js';
import { trainCli } from './commands/train/options.js';
import type { CommandContext } from './run-folder/context.js';
import { EXIT_CODES, describeFailure } from './errors.js';
import { collect } from './options.js';
import { loadPlugins } from './plugins.js';
import { Progress } from './progress.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** The exit-code table printed by `advrec --help`. */
export const EXIT_CODE_HELP = `
Exit codes:
  0    success
  1    unexpected internal error (a bug: please report it)
  2    usage or config error (bad flag, invalid config field, unknown model/adversary/data set name,
       a plugin that fails to load or throws: the plugin is named)
  3    data error (missing or malformed file, unknown id, feature rows that do not match the items)
  4    download error (network, SHA-256 mismatch, unsafe archive member)
  5    could not write a file (disk full, no permission); the previous file is kept
  6    the job queue's Redis server stopped answering for longer than --queue-wait (sweep,
       features, worker); the jobs stay on the queue: run the same command again to go on
  130  interrupted (Ctrl-C); training saves checkpoints/last.ckpt after the current epoch
`;

/** The commands of `advrec`, in `--help` order; each module declares its own options. */
const COMMANDS: readonly CliCommand[] = [
  datasetsCli,
  trainCli,
  evaluateCli,
  attackCli,
  recommendCli,
  exportCli,
  featuresCli,
  reproduceCli,
  sweepCli,
];

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
  const run: Runner =
    (action) =>
    async (...args) => {
      setExitCode(await action(context!, ...args));
    };
  const program = new Command('advrec')
    .description(
      'Train, evaluate and attack recommender models with adversarial learning (APR, AMR).',
    )
    .version(version, '-v, --version')
    .option('--json', 'print one machine-readable JSON document on stdout')
    .option('-q, --quiet', 'no progress output on stderr')
    .option(
      '--allow-unverified-checkpoints',
      'read checkpoints that carry no checksum (ADVRECK1, safetensors from elsewhere), with a warning',
    )
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
      const globals = root.opts<{
        json?: boolean;
        quiet?: boolean;
        plugin: string[];
        allowUnverifiedCheckpoints?: boolean;
      }>();
      // The checkpoint readers of @advrec/models take the opt-in from the environment.
      if (globals.allowUnverifiedCheckpoints)
        process.env['ADVREC_ALLOW_UNVERIFIED_CHECKPOINTS'] = '1';
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

  for (const command of COMMANDS) command.register(program, run);

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

/** A write to a pipe whose reader has closed (EPIPE). */
export function isBrokenPipe(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'EPIPE';
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
    // The reader of stdout went away (`advrec --help | head`): end quietly, as Unix tools do.
    if (isBrokenPipe(error)) return EXIT_CODES.ok;
    if (io.signal?.aborted) {
      // Stopped by Ctrl-C between two steps: what was complete is on disk.
      io.stderr.write('advrec: interrupted\n');
      return EXIT_CODES.interrupted;
    }
    const failure = describeFailure(error);
    io.stderr.write(`${failure.line}\n`);
    return failure.code;
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
