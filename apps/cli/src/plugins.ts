/**
 * Plugin modules: loaded by path or package name, remembered so that an error thrown from
 * one is blamed on it. Kept apart from the run helpers so that the CLI can load it without
 * the training and evaluation packages.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, DataFormatError } from '@advrec/data';

/** Plugins loaded in this process: the spec the user gave and the file it resolved to. */
const loadedPlugins: { spec: string; url: string; path: string | null }[] = [];

/**
 * The plugin an error came from, found from its stack: the loaded plugin module whose file
 * appears in it (or `null` when none does). The CLI names it instead of printing a stack.
 */
export function pluginBlamedFor(error: unknown): string | null {
  const stack = (error as { stack?: unknown } | null)?.stack;
  if (typeof stack !== 'string') return null;
  for (const plugin of loadedPlugins)
    if (stack.includes(plugin.url) || (plugin.path !== null && stack.includes(plugin.path)))
      return plugin.spec;
  return null;
}

/**
 * Loads plugin modules (a path, or a package name resolved from the working folder). A plugin
 * registers models with `registerModel` / `registerTfjsModel` and adversaries with
 * `registerAdversary` when imported.
 */
export async function loadPlugins(specs: readonly string[]): Promise<string[]> {
  const loaded: string[] = [];
  for (const spec of specs) {
    let url: string;
    if (spec.startsWith('.') || spec.startsWith('/') || existsSync(spec)) {
      const path = resolve(spec);
      if (!existsSync(path))
        throw new DataFormatError({ file: path }, 'a plugin module (--plugin)', 'no such file');
      url = pathToFileURL(path).href;
    } else {
      try {
        url = pathToFileURL(createRequire(join(process.cwd(), 'noop.js')).resolve(spec)).href;
      } catch {
        url = spec;
      }
    }
    const path = url.startsWith('file:') ? fileURLToPath(url) : null;
    if (!loadedPlugins.some((p) => p.url === url)) loadedPlugins.push({ spec, url, path });
    try {
      await import(url);
    } catch (error) {
      throw new ConfigError([
        { path: 'plugins', message: `cannot load plugin "${spec}": ${(error as Error).message}` },
      ]);
    }
    loaded.push(spec);
  }
  return loaded;
}

/**
 * Model packages of advrec that a run config may name without `--plugin` (`model: neumf`):
 * their package is added to the run's plugins, so the run folder records it and `evaluate`,
 * `attack` and `--resume` load it again.
 */
export const MODEL_PACKAGES: Readonly<Record<string, string>> = {
  neumf: '@advrec/neumf',
  sasrec: '@advrec/sasrec',
  gru4rec: '@advrec/gru4rec',
};

/** The plugins a raw run config needs: its own, plus the package of a model it names. */
export function pluginsOf(config: unknown): string[] {
  const raw = (config ?? {}) as { plugins?: unknown; model?: { name?: unknown } };
  const own = Array.isArray(raw.plugins)
    ? raw.plugins.filter((p): p is string => typeof p === 'string')
    : [];
  const name = raw.model?.name;
  const builtIn =
    typeof name === 'string' && Object.hasOwn(MODEL_PACKAGES, name) ? [MODEL_PACKAGES[name]!] : [];
  return [...new Set([...own, ...builtIn])];
}
