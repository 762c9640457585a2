/**
 * `advrec export`: its options, defined without loading the command's implementation (it is
 * imported when the command runs), so that `advrec --help` starts fast.
 */
import type { CliCommand } from '../../command.js';
import type { ExportOptions } from './run.js';

/** `advrec export`: its options and action. */
export const exportCli: CliCommand = {
  register(program, run) {
    program
      .command('export')
      .description(
        'rewrite a checkpoint as safetensors (--out *.safetensors, readable from Python) or in the advrec format',
      )
      .requiredOption(
        '--from <path>',
        'a checkpoint file, or a run folder (its checkpoints/model.ckpt)',
      )
      .requiredOption('-o, --out <file>', 'the file to write; *.safetensors selects that layout')
      .action(
        run(async (context, flags: ExportOptions) =>
          (await import('./run.js')).exportCommand(flags, context),
        ),
      );
  },
};
