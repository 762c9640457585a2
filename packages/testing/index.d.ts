/** `../shared/data` beside the repository, or `ADVREC_SHARED_DATA` when set. */
export declare function sharedDataDir(): string;

/** Paths of the shared data files the tests read. */
export declare function sharedDataFiles(): {
  readonly movielens100k: string;
  readonly gowallaTrain: string;
  readonly gowallaTest: string;
  readonly ml1mTrain: string;
  readonly ml1mTest: string;
  readonly amazonGames: string;
};

/** `CHROMIUM_PATH`, else Debian's chromium, else `null` (browser tests then skip). */
export declare function chromiumPath(): string | null;
/** `REDIS_SERVER`, else Debian's redis-server, else `null` (the job-queue tests then skip). */
export declare function redisServerPath(): string | null;
/** A TCP port free on 127.0.0.1 right now. */
export declare function freePort(): Promise<number>;
/**
 * A throw-away Redis server on 127.0.0.1 (free port, no persistence), once it accepts
 * connections; `extraArgs` are further redis-server flags (`['--requirepass', 'secret']`).
 */
export declare function startRedisServer(
  path?: string | null,
  extraArgs?: readonly string[],
): Promise<{ readonly url: string; readonly port: number; stop(): void }>;
