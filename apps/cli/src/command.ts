/**
 * How a command module plugs into `advrec`: it declares its own options and action
 * ({@link CliCommand.register}); `createProgram` is the list of them.
 */
import type { Command } from 'commander';
import type { CommandContext } from './run-folder/context.js';

/**
 * Wraps a command's action: the action gets the invocation's context first, then
 * commander's arguments, and returns the exit code.
 */
export type Runner = <A extends unknown[]>(
  action: (context: CommandContext, ...args: A) => Promise<number> | number,
) => (...args: A) => Promise<void>;

/** A command (or a group of subcommands) of `advrec`. */
export interface CliCommand {
  /** Adds the command, its options and its action under `program`. */
  register(program: Command, run: Runner): void;
}

/** `-r, --run` and `--checkpoint`, shared by the commands that read a run folder. */
export function runFolderOptions(command: Command): Command {
  return command
    .requiredOption('-r, --run <folder>', 'a run folder written by advrec train')
    .option('--checkpoint <file>', "a checkpoint other than the run's model.ckpt");
}
