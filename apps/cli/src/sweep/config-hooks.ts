/**
 * The run config's rules for `@advrec/sweep` (its `SweepConfigHooks`): files read as
 * `advrec train -c` reads them, `--set` overrides, each run resolved as `advrec train` would
 * (a pairwise run config, or a sequential one when the registry knows its model as
 * sequential), with its file paths made absolute and the model packages it names recorded as
 * plugins.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { sequentialModelNames } from '@advrec/models';
import type { SweepConfigHooks } from '@advrec/sweep';
import { applyOverrides, readConfigFile, resolveRunConfig } from '../config.js';
import type { ResolvedRunConfig } from '../config.js';
import { pluginsOf } from '../plugins.js';
import { toJson } from '../run-folder/runs.js';
import { resolveSequentialConfig, SEQUENTIAL_VALIDATION_METRIC } from '../run-folder/sequential.js';
import type { SequentialRunConfig } from '../run-folder/sequential.js';

/** One run of a sweep, resolved: a pairwise run config, or a sequential model's. */
export type SweepRunConfig = ResolvedRunConfig | SequentialRunConfig;

/** Whether a raw or resolved run config names a sequential model (its package loaded). */
export function namesSequentialModel(config: { readonly model?: unknown }): boolean {
  const name = (config.model as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' && sequentialModelNames().includes(name);
}

/** Narrows a sweep run's config to a sequential one. */
export function isSequentialRunConfig(config: SweepRunConfig): config is SequentialRunConfig {
  return namesSequentialModel(config);
}

/**
 * The run-config fields that name files: made absolute against the directory the sweep is
 * expanded in, so that workers started elsewhere (another directory, another machine sharing
 * the file system) read the same files. Data-set names (`ml-100k`) are left alone.
 */
function absolutePaths(config: Record<string, unknown>, cwd: string): Record<string, unknown> {
  const data = config.data as Record<string, unknown> | undefined;
  if (typeof data !== 'object' || data === null) return config;
  const fixed: Record<string, unknown> = { ...data };
  for (const key of ['source', 'testPath', 'validationPath', 'features']) {
    const value = fixed[key];
    if (typeof value === 'string' && !isAbsolute(value) && existsSync(resolve(cwd, value)))
      fixed[key] = resolve(cwd, value);
  }
  const plugins = Array.isArray(config.plugins)
    ? config.plugins.map((p) =>
        typeof p === 'string' && (p.startsWith('./') || p.startsWith('../')) ? resolve(cwd, p) : p,
      )
    : config.plugins;
  return { ...config, data: fixed, ...(plugins !== undefined ? { plugins } : {}) };
}

/** `advrec`'s run config for `@advrec/sweep`'s `readSweepFile` and `expandSweep`. */
export const sweepConfigHooks: SweepConfigHooks<SweepRunConfig> = {
  readConfigFile,
  applyOverrides: (base, overrides) => applyOverrides(base, overrides),
  prepareRun: (raw, cwd) => {
    const merged = absolutePaths(raw, cwd);
    // A model package the run names (model: neumf) is recorded among its plugins.
    const plugins = pluginsOf(merged);
    const config = plugins.length > 0 ? { ...merged, plugins } : merged;
    // Sequential models (their packages are loaded before the sweep expands).
    if (namesSequentialModel(config))
      return { config, resolved: resolveSequentialConfig(config, { adversarialEpochs: 0 }) };
    return { config, resolved: resolveRunConfig(config) };
  },
  validationMetric: (resolved) =>
    isSequentialRunConfig(resolved)
      ? SEQUENTIAL_VALIDATION_METRIC
      : !resolved.data.validation && resolved.data.validationPath === null
        ? {
            path: 'base.data.validation',
            message:
              'a sweep chooses its best configuration on validation: set data.validation: true (or give data.validationPath)',
          }
        : resolved.training.validation.metric,
  toJson: (resolved) => toJson(resolved),
};
