import { sharedDataFiles } from '@advrec/testing';

/** Files of `../shared/data` (see `@advrec/testing`). */
export const { movielens100k, gowallaTrain, gowallaTest } = sharedDataFiles();
