/**
 * What `train --resume` checks before it continues a run: the checkpoint carries the
 * resolved config it was trained under, and `config.json` must still say the same. A
 * checkpoint copied from another run, or a config edited after the run started, is refused
 * naming every field that differs (a resumed run must end as the uninterrupted one would).
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '@advrec/data';

/** Canonical JSON (object keys sorted) of a config. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/** SHA-256 of a config's canonical JSON: what a checkpoint records as `configHash`. */
export function configHash(config: unknown): string {
  return createHash('sha256')
    .update(canonical(JSON.parse(JSON.stringify(config))))
    .digest('hex');
}

/** The leaf paths where two configs differ, with both values (`a` first). */
export function configDifferences(
  a: unknown,
  b: unknown,
  path = '',
): { path: string; a: unknown; b: unknown }[] {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => configDifferences(a[k], b[k], path ? `${path}.${k}` : k));
  }
  return canonical(a) === canonical(b) ? [] : [{ path: path || '(config)', a, b }];
}

/**
 * Refuses to resume from `checkpointFile` when the config it recorded differs from the
 * run folder's `config.json`. Returns a note to print when the checkpoint recorded none
 * (written by an older advrec: it cannot be verified), else null.
 * @throws ConfigError at `--resume`, naming each differing field and both values.
 */
export function checkResumeConfig(
  checkpointFile: string,
  recorded: unknown,
  current: unknown,
): string | null {
  if (recorded === undefined || recorded === null)
    return `${checkpointFile} records no config (written by an older advrec): it cannot be checked against config.json`;
  const normal = (v: unknown): unknown => JSON.parse(JSON.stringify(v ?? null)) as unknown;
  const differences = configDifferences(normal(recorded), normal(current));
  if (differences.length === 0) return null;
  const shown = differences
    .slice(0, 8)
    .map(
      (d) =>
        `${d.path} (${JSON.stringify(d.a) ?? 'absent'} in the checkpoint, ${JSON.stringify(d.b) ?? 'absent'} in config.json)`,
    );
  throw new ConfigError([
    {
      path: '--resume',
      message: `${checkpointFile} was trained under another config than the run folder's config.json: ${shown.join('; ')}${differences.length > 8 ? `; and ${differences.length - 8} more` : ''}. Put config.json back as it was, or start a new run`,
    },
  ]);
}
