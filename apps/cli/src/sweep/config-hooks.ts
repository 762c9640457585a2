/**
 * The run config's rules for `@advrec/sweep` (its `SweepConfigHooks`): files read as
 * `advrec train -c` reads them, `--set` overrides, each run resolved as `advrec train` would,
 * with its file paths made absolute and the model packages it names recorded as plugins.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { SweepConfigHooks } from '@advrec/sweep';
import { applyOverrides, readConfigFile, resolveRunConfig } from '../config.js';
import type { ResolvedRunConfig } from '../config.js';
import { pluginsOf } from '../plugins.js';
import { toJson } from '../run-folder/runs.js';

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
export const sweepConfigHooks: SweepConfigHooks<ResolvedRunConfig> = {
  readConfigFile,
  applyOverrides: (base, overrides) => applyOverrides(base, overrides),
  prepareRun: (raw, cwd) => {
    const merged = absolutePaths(raw, cwd);
    // A model package the run names (model: neumf) is recorded among its plugins.
    const plugins = pluginsOf(merged);
    const config = plugins.length > 0 ? { ...merged, plugins } : merged;
    return { config, resolved: resolveRunConfig(config) };
  },
  validationMetric: (resolved) =>
    !resolved.data.validation && resolved.data.validationPath === null
      ? {
          path: 'base.data.validation',
          message:
            'a sweep chooses its best configuration on validation: set data.validation: true (or give data.validationPath)',
        }
      : resolved.training.validation.metric,
  toJson: (resolved) => toJson(resolved),
};
