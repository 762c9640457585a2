/** `../shared/data` beside the repository, or `ADVREC_SHARED_DATA` when set. */
export declare function sharedDataDir(): string;

/** Paths of the shared data files the tests read. */
export declare function sharedDataFiles(): {
  readonly movielens100k: string;
  readonly gowallaTrain: string;
  readonly gowallaTest: string;
  readonly ml1mTrain: string;
  readonly ml1mTest: string;
};

/** `CHROMIUM_PATH`, else Debian's chromium, else `null` (browser tests then skip). */
export declare function chromiumPath(): string | null;
/** `REDIS_SERVER`, else Debian's redis-server, else `null` (the job-queue tests then skip). */
export declare function redisServerPath(): string | null;
