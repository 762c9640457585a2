import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedDataFiles } from '@advrec/testing';

/** The package's own fixtures folder. */
export const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '../../fixtures');

/** Files of `../shared/data` (see `@advrec/testing`). */
export const { movielens100k, gowallaTrain, gowallaTest, ml1mTrain, ml1mTest, amazonGames } =
  sharedDataFiles();
