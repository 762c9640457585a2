/**
 * Run folders and plugins: writing results, loading plugins, building and reloading models.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { ConfigError, DataFormatError, writeFileAtomic } from '@advrec/data';
import { createModel, readCheckpoint, restoreModel, sequentialModelNames } from '@advrec/models';
import type { JsonObject, Model } from '@advrec/models';
import type { ResolvedRunConfig } from '../config.js';
import { loadData, readJsonFile } from '../catalog/load.js';
import type { LoadedData } from '../catalog/load.js';

/** Writes text (or JSON) to a file atomically. */
export async function writeText(file: string, text: string): Promise<void> {
  await writeFileAtomic(file, () => [text]);
}

/** JSON with typed arrays as plain arrays and non-finite numbers as null. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (ArrayBuffer.isView(v) && !(v instanceof DataView))
        return Array.from(v as unknown as ArrayLike<number>);
      if (typeof v === 'number' && !Number.isFinite(v)) return null;
      return v;
    },
    2,
  )}\n`;
}

import { loadPlugins } from '../plugins.js';
export { loadPlugins, pluginBlamedFor } from '../plugins.js';

/**
 * Creates the model a run config names, on a loaded data set. The factory's option errors
 * are reported with their run-config paths (`data.features`, `model.embeddingSize`, ...).
 */
export function buildModel(config: ResolvedRunConfig, data: LoadedData): Model {
  // K and the seed have their own fields: the options may not set them a second time.
  const twice = ['embeddingSize', 'seed'].filter((key) => key in config.model.options);
  if (twice.length > 0)
    throw new ConfigError(
      twice.map((key) => ({
        path: `model.options.${key}`,
        message: `set model.${key} instead (model.options.${key} would silently replace it)`,
      })),
    );
  try {
    return createConfiguredModel(config, data);
  } catch (error) {
    if (!ConfigError.isInstance(error)) throw error;
    throw new ConfigError(
      error.issues.map((issue) => ({
        path:
          issue.path === 'features'
            ? 'data.features'
            : ['embeddingSize', 'seed'].includes(issue.path)
              ? `model.${issue.path}`
              : `model.options.${issue.path}`,
        message: issue.message,
      })),
    );
  }
}

function createConfiguredModel(config: ResolvedRunConfig, data: LoadedData): Model {
  const features = data.itemFeatures
    ? { data: data.itemFeatures.matrix, dimension: data.itemFeatures.dimension }
    : undefined;
  return createModel(
    config.model.name,
    {
      numUsers: data.dataset.numUsers,
      numItems: data.dataset.numItems,
      train: data.dataset.train,
      seed: config.model.seed,
      ...(features ? { itemFeatures: features } : {}),
    },
    {
      embeddingSize: config.model.embeddingSize,
      seed: config.model.seed,
      ...config.model.options,
    } as JsonObject,
  );
}

/** A run folder's config, data and model, reloaded (for evaluate, attack, recommend). */
export interface ReloadedRun {
  readonly config: ResolvedRunConfig;
  readonly data: LoadedData;
  readonly model: Model;
  readonly checkpoint: string;
}

/** The checkpoint of a run folder: `model.ckpt`, else the newest of the others. */
export async function runCheckpoint(folder: string): Promise<string> {
  const dir = join(folder, 'checkpoints');
  for (const name of ['model.ckpt', 'adversarial-best.ckpt', 'bpr-best.ckpt', 'last.ckpt'])
    if (existsSync(join(dir, name))) return join(dir, name);
  if (!existsSync(dir))
    throw new DataFormatError(
      { file: dir },
      'a run folder with checkpoints',
      'no checkpoints folder',
    );
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ckpt'));
  if (files.length === 0) throw new DataFormatError({ file: dir }, 'a checkpoint (*.ckpt)', 'none');
  return join(dir, files.sort().at(-1)!);
}

/** Reloads a run folder written by `advrec train`, checking the data set fingerprint. */
export async function reloadRun(folder: string, checkpointFile?: string): Promise<ReloadedRun> {
  const configFile = join(folder, 'config.json');
  if (!existsSync(configFile))
    throw new DataFormatError(
      { file: configFile },
      'a run folder written by advrec train (config.json)',
      'no such file',
    );
  const config = (await readJsonFile(
    configFile,
    'the run config advrec wrote',
  )) as ResolvedRunConfig;
  const modelName = (config as { model?: { name?: unknown } }).model?.name;
  await loadPlugins(config.plugins);
  if (typeof modelName === 'string' && sequentialModelNames().includes(modelName))
    throw new ConfigError([
      {
        path: '--run',
        message: `${folder} holds a sequential run (${modelName}): train --resume, evaluate, attack and recommend take it; this command works on pairwise runs`,
      },
    ]);
  const data = await loadData(config.data);
  const datasetFile = join(folder, 'dataset.json');
  const recorded = existsSync(datasetFile)
    ? ((await readJsonFile(datasetFile, 'the data set record advrec wrote')) as {
        fingerprint?: string;
      })
    : {};
  if (recorded.fingerprint && recorded.fingerprint !== data.fingerprint)
    throw new DataFormatError(
      { file: join(folder, 'dataset.json') },
      `data set fingerprint ${recorded.fingerprint} (the data the run was trained on)`,
      data.fingerprint,
    );
  const checkpoint = checkpointFile ?? (await runCheckpoint(folder));
  const saved = await readCheckpoint(checkpoint);
  // A checkpoint of another run (other data, another model) is refused, even of the same shape.
  const trainedOn = saved.metadata['datasetFingerprint'];
  if (typeof trainedOn === 'string' && trainedOn !== data.fingerprint)
    throw new DataFormatError(
      { file: checkpoint },
      `a checkpoint trained on this run's data set (fingerprint ${data.fingerprint.slice(0, 12)})`,
      `one trained on another data set (fingerprint ${trainedOn.slice(0, 12)})`,
    );
  if (saved.model.modelName !== config.model.name)
    throw new DataFormatError(
      { file: checkpoint },
      `a ${config.model.name} checkpoint (the run's model)`,
      `a ${saved.model.modelName} checkpoint`,
    );
  const k = saved.model.config['embeddingSize'];
  if (typeof k === 'number' && k !== config.model.embeddingSize)
    throw new DataFormatError(
      { file: checkpoint },
      `a model with K = ${config.model.embeddingSize} (the run's config)`,
      `K = ${k}`,
    );
  const model = restoreModel(saved.model);
  if (model.numUsers !== data.dataset.numUsers || model.numItems !== data.dataset.numItems)
    throw new DataFormatError(
      { file: checkpoint },
      `a model of ${data.dataset.numUsers} users x ${data.dataset.numItems} items`,
      `${model.numUsers} x ${model.numItems}`,
    );
  return { config, data, model, checkpoint };
}

/** Machine facts for reports: CPU, cores, memory, Node. */
export function machineLine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}
