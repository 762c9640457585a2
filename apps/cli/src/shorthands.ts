/**
 * The shorthand flags of the commands that build a run config (`train`, `reproduce atsrec`):
 * one table declares each flag and the run-config field it sets, so the help text, the
 * overrides and `--resume`'s conflict check cannot disagree.
 */
import { Option } from 'commander';
import type { Command } from 'commander';

/** A shorthand flag: `--epochs 5` is `--set training.epochs=5`. */
export interface Shorthand {
  /** Commander's flags, e.g. `--epochs <n>`. */
  readonly flags: string;
  /** The run-config field it sets. */
  readonly path: string;
}

/** Every shorthand, by its option key. */
export const SHORTHANDS = {
  data: { flags: '--data <source>', path: 'data.source' },
  model: { flags: '--model <name>', path: 'model.name' },
  epochs: { flags: '--epochs <n>', path: 'training.epochs' },
  adversarialEpochs: { flags: '--adversarial-epochs <n>', path: 'training.adversarialEpochs' },
  adversary: { flags: '--adversary <name>', path: 'training.adversarial.adversary' },
  epsilon: { flags: '--epsilon <eps>', path: 'training.adversarial.epsilon' },
  lambda: { flags: '--lambda <weight>', path: 'training.adversarial.adversarialWeight' },
  threads: { flags: '--threads <n>', path: 'training.threads' },
  epsilons: { flags: '--epsilons <list>', path: 'evaluation.attackEpsilons' },
} as const satisfies Record<string, Shorthand>;

/** The option key of a shorthand. */
export type ShorthandKey = keyof typeof SHORTHANDS;

/** How a command shows a shorthand: its own help line, parser or choices. */
export interface ShorthandUse {
  readonly description?: string;
  readonly parse?: (value: string) => unknown;
  readonly choices?: readonly string[];
}

/** Declares the shorthands `keys` on `command` (default help: "shorthand for --set path=..."). */
export function addShorthands(
  command: Command,
  keys: readonly ShorthandKey[],
  uses: Partial<Record<ShorthandKey, ShorthandUse>> = {},
): Command {
  for (const key of keys) {
    const { flags, path } = SHORTHANDS[key];
    const use = uses[key] ?? {};
    const option = new Option(flags, use.description ?? `shorthand for --set ${path}=...`);
    if (use.parse) option.argParser(use.parse);
    if (use.choices) option.choices(use.choices);
    command.addOption(option);
  }
  return command;
}

/** The `path=value` overrides the given shorthands stand for, in the table's order. */
export function shorthandOverrides(options: Partial<Record<ShorthandKey, unknown>>): string[] {
  const overrides: string[] = [];
  for (const key of Object.keys(SHORTHANDS) as ShorthandKey[]) {
    const value = options[key];
    if (value === undefined) continue;
    overrides.push(
      `${SHORTHANDS[key].path}=${Array.isArray(value) ? JSON.stringify(value) : String(value)}`,
    );
  }
  return overrides;
}
