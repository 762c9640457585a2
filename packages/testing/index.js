// Plain ESM (no build step) so that tests, benchmarks and tsx can import it as is.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { clearTimeout, setTimeout } from 'node:timers';
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
    amazonGames: join(root, 'amazon-games-sasrec', 'Video.txt'),
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

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/**
 * Starts a throw-away Redis server on 127.0.0.1 (a free port, no persistence) and resolves
 * once it accepts connections, with its URL and `stop()` (SIGKILL). Rejects after 20 s.
 */
export async function startRedisServer(path = redisServerPath(), extraArgs = []) {
  if (path === null)
    throw new Error('no redis-server: install Debian redis-server or set REDIS_SERVER');
  const port = await freePort();
  const child = spawn(
    path,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      ...extraArgs,
    ],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  await new Promise((ready, fail) => {
    let log = '';
    const timer = setTimeout(
      () => fail(new Error(`redis-server did not start on port ${port}: ${log}`)),
      20_000,
    );
    child.on('error', (error) => {
      clearTimeout(timer);
      fail(error);
    });
    child.stdout.on('data', (chunk) => {
      log += chunk.toString();
      if (/Ready to accept connections/.test(log)) {
        clearTimeout(timer);
        ready();
      }
    });
  });
  return { url: `redis://127.0.0.1:${port}`, port, stop: () => child.kill('SIGKILL') };
}
