/**
 * Whether a run folder holds a sequential run: light enough for every command to ask before
 * it loads anything heavy (no training engines).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sequentialModelNames } from '@advrec/models';
import { readJsonFile } from '../catalog/load.js';
import { loadPlugins, pluginsOf } from '../plugins.js';

/** True when the run folder's `config.json` names a registered sequential model (its plugins loaded). */
export async function isSequentialRunFolder(folder: string): Promise<boolean> {
  const file = join(folder, 'config.json');
  if (!existsSync(file)) return false;
  const raw = (await readJsonFile(file, 'the run config advrec wrote')) as Record<string, unknown>;
  const name = (raw.model as { name?: unknown } | undefined)?.name;
  if (typeof name !== 'string') return false;
  await loadPlugins(pluginsOf(raw));
  return sequentialModelNames().includes(name);
}
