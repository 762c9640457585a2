// Plain ESM (no build step) so that tests, benchmarks and tsx can import it as is.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `../shared/data` beside the repository (CI clones the repository with `shared/` beside
 * it), or `ADVREC_SHARED_DATA` when set.
 */
export function sharedDataDir() {
  if (process.env.ADVREC_SHARED_DATA) return process.env.ADVREC_SHARED_DATA;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 8; up++) {
    const candidate = join(dir, '..', 'shared', 'data');
    if (existsSync(join(candidate, 'README.md'))) return resolve(candidate);
    dir = dirname(dir);
  }
  throw new Error('../shared/data not found beside the repository; set ADVREC_SHARED_DATA');
}

/** Paths of the shared data files the tests read. */
export function sharedDataFiles() {
  const root = sharedDataDir();
  return {
    movielens100k: join(root, 'movielens-100k', 'u.data'),
    gowallaTrain: join(root, 'gowalla', 'train.txt'),
    gowallaTest: join(root, 'gowalla', 'test.txt'),
    ml1mTrain: join(root, 'ml-1m', 'train.txt'),
    ml1mTest: join(root, 'ml-1m', 'test.txt'),
  };
}

/**
 * Chromium for browser tests: `CHROMIUM_PATH`, else Debian's `/usr/bin/chromium` (or
 * `chromium-browser`); `null` when none is installed (the tests that need one skip, naming it).
 */
export function chromiumPath() {
  for (const candidate of [
    process.env.CHROMIUM_PATH,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
  ])
    if (candidate && existsSync(candidate)) return candidate;
  return null;
}

/**
 * `REDIS_SERVER`, else Debian's `redis-server`, else `null` (the job-queue tests then say they
 * are skipped; `.ci/run` installs it).
 */
export function redisServerPath() {
  for (const candidate of [
    process.env.REDIS_SERVER,
    '/usr/bin/redis-server',
    '/usr/local/bin/redis-server',
  ])
    if (candidate && existsSync(candidate)) return candidate;
  return null;
}
