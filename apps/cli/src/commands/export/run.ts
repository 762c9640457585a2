import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, DataError } from '@advrec/data';
import {
  getSequentialModelFactory,
  readCheckpoint,
  restoreModel,
  sequentialModelNames,
  writeCheckpoint,
} from '@advrec/models';
import type { Checkpoint, CheckpointedModel } from '@advrec/models';
import { readJsonFile } from '../../catalog/load.js';
import { loadPlugins, pluginsOf } from '../../plugins.js';
import type { CommandContext } from '../../run-folder/context.js';
import { toJson } from '../../run-folder/runs.js';

/** Options of `advrec export`. */
export interface ExportOptions {
  /** A checkpoint file, or a run folder (its `checkpoints/model.ckpt`). */
  readonly from: string;
  readonly out: string;
}

/**
 * `advrec export`: rewrites a checkpoint in the format its `--out` name asks for: `.safetensors`
 * (readable from Python: `safetensors.numpy.load_file`, or numpy) or the advrec format
 * (anything else). The model, its optimiser state and the metadata travel unchanged. Any
 * registered model: pairwise or sequential, built in, a model package (`sasrec`) or a plugin's
 * (a run folder's own plugins are loaded; a loose checkpoint's with `--plugin`).
 */
export async function exportCommand(
  options: ExportOptions,
  context: CommandContext,
): Promise<number> {
  const runCheckpoint = join(options.from, 'checkpoints', 'model.ckpt');
  const file = existsSync(runCheckpoint) ? runCheckpoint : options.from;
  if (!existsSync(file))
    throw new DataError(
      `${options.from}: no such checkpoint or run folder (with checkpoints/model.ckpt)`,
    );
  if (options.out === file)
    throw new ConfigError([{ path: '--out', message: 'must differ from the checkpoint read' }]);
  const folderConfig = join(options.from, 'config.json');
  if (file === runCheckpoint && existsSync(folderConfig))
    await loadPlugins(pluginsOf(await readJsonFile(folderConfig, 'the run config advrec wrote')));
  const checkpoint = await readCheckpoint(file);
  const model = await restoreCheckpointModel(checkpoint);
  await writeCheckpoint(options.out, model, checkpoint.extraTables, checkpoint.metadata);
  const format = options.out.endsWith('.safetensors') ? 'safetensors' : 'advrec';
  if (context.json)
    context.stdout.write(
      toJson({
        from: file,
        out: options.out,
        format,
        model: model.modelName,
        tables: model.tables.length,
      }),
    );
  else context.stdout.write(`wrote ${options.out} (${format}, ${model.modelName}, from ${file})\n`);
  return 0;
}

/**
 * The model of a checkpoint, rebuilt through the registries (a model package the checkpoint
 * names is loaded first): a checkpoint of an unknown model is refused by name.
 */
async function restoreCheckpointModel(
  checkpoint: Checkpoint,
): Promise<CheckpointedModel & { readonly modelName: string }> {
  const name = checkpoint.model.modelName;
  await loadPlugins(pluginsOf({ model: { name } }));
  if (!sequentialModelNames().includes(name)) return restoreModel(checkpoint.model);
  return getSequentialModelFactory(name).restore({
    config: checkpoint.model.config,
    numItems: checkpoint.model.numItems,
    tables: checkpoint.model.tables,
  });
}
