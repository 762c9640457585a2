import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The package's own fixtures folder. */
export const fixtures = resolve(here, '../../fixtures');

/**
 * `../shared/data` beside the repository (CI clones the repo with `shared/` beside it).
 * `ADVREC_SHARED_DATA` overrides it.
 */
export const sharedData = process.env.ADVREC_SHARED_DATA ?? findShared();

function findShared(): string {
  let dir = here;
  for (let up = 0; up < 8; up++) {
    const candidate = join(dir, '..', 'shared', 'data');
    if (existsSync(join(candidate, 'README.md'))) return resolve(candidate);
    dir = dirname(dir);
  }
  throw new Error('../shared/data not found beside the repository; set ADVREC_SHARED_DATA');
}

export const movielens100k = join(sharedData ?? '', 'movielens-100k', 'u.data');
export const gowallaTrain = join(sharedData ?? '', 'gowalla', 'train.txt');
export const gowallaTest = join(sharedData ?? '', 'gowalla', 'test.txt');
export const ml1mTrain = join(sharedData ?? '', 'ml-1m', 'train.txt');
export const ml1mTest = join(sharedData ?? '', 'ml-1m', 'test.txt');
