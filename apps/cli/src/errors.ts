import { AdvrecError, ConfigError, DataError, DataFormatError, WriteError } from '@advrec/data';
import type { ConfigIssue } from '@advrec/data';
import { pluginBlamedFor } from './plugins.js';

/**
 * The exit codes of `advrec` (documented in its README and `advrec --help`).
 */
export const EXIT_CODES = {
  /** The command did what was asked. */
  ok: 0,
  /** An unexpected failure (a bug: please report it with the printed stack). */
  internal: 1,
  /** Bad command line or config: unknown flag, invalid field, unknown model or adversary name. */
  usage: 2,
  /** Bad data: a missing or malformed file, an unknown id, a feature matrix that does not match. */
  data: 3,
  /** A download failed, a checksum did not match, or an archive tried to write outside its folder. */
  download: 4,
  /** A file could not be written (disk full, no permission, a file where a folder should be); the previous file is kept. */
  io: 5,
  /**
   * The job queue's Redis server stopped answering for longer than `--queue-wait` (sweep,
   * features, worker); the jobs stay on the queue: run the same command again to go on.
   */
  queueLost: 6,
  /** Interrupted (Ctrl-C / SIGINT); the last complete checkpoint is intact. */
  interrupted: 130,
} as const;

/** One of {@link EXIT_CODES}' values. */
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

const DOWNLOAD_ERROR = Symbol.for('advrec.error.DownloadError');
const QUEUE_LOST_ERROR = Symbol.for('advrec.error.QueueLostError');

/** A download, checksum or archive-safety failure (exit code 4). */
export class DownloadError extends AdvrecError {
  readonly [DOWNLOAD_ERROR] = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DownloadError';
  }

  static override isInstance(value: unknown): value is DownloadError {
    return typeof value === 'object' && value !== null && DOWNLOAD_ERROR in value;
  }
}

/** Throws a {@link ConfigError} when `issues` is not empty. */
export function throwIfIssues(issues: readonly ConfigIssue[]): void {
  if (issues.length > 0) throw new ConfigError(issues);
}

/** The exit code for an error thrown by a command. */
export function exitCodeOf(error: unknown): ExitCode {
  // @advrec/sweep's QueueLostError, known by its marker (this module loads at every start).
  if (typeof error === 'object' && error !== null && QUEUE_LOST_ERROR in error)
    return EXIT_CODES.queueLost;
  if (DownloadError.isInstance(error)) return EXIT_CODES.download;
  if (WriteError.isInstance(error)) return EXIT_CODES.io;
  if (ConfigError.isInstance(error)) return EXIT_CODES.usage;
  if (DataFormatError.isInstance(error) || DataError.isInstance(error)) return EXIT_CODES.data;
  if (AdvrecError.isInstance(error)) {
    // Errors of other packages (EvaluationError, ...) are about the data or the model given.
    return EXIT_CODES.data;
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS') return EXIT_CODES.io;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') return EXIT_CODES.data;
  if (typeof code === 'string' && code.startsWith('commander.')) return EXIT_CODES.usage;
  return EXIT_CODES.internal;
}

/** Runs `make`, prefixing the paths of a {@link ConfigError} it throws (`users` -> `data.synthetic.users`). */
export function withPathPrefix<T>(prefix: string, make: () => T): T {
  try {
    return make();
  } catch (error) {
    if (!ConfigError.isInstance(error)) throw error;
    throw new ConfigError(
      error.issues.map((i) => ({ path: `${prefix}.${i.path}`, message: i.message })),
    );
  }
}

/**
 * What `advrec` prints for an error, and its exit code: one line naming the file, field or
 * plugin; a stack only for an internal error (a bug in advrec itself).
 */
export function describeFailure(error: unknown): { code: number; line: string } {
  const code = exitCodeOf(error);
  const message = (error as Error | null)?.message ?? String(error);
  if (AdvrecError.isInstance(error) || code !== EXIT_CODES.internal)
    return { code, line: `advrec: ${message}` };
  const plugin = pluginBlamedFor(error);
  if (plugin !== null)
    return {
      code: EXIT_CODES.usage,
      line: `advrec: plugin "${plugin}" failed: ${message} (fix the plugin or run without it)`,
    };
  return {
    code,
    line: `advrec: internal error: ${(error as Error | null)?.stack ?? String(error)}`,
  };
}
