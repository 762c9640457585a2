/**
 * Typed errors of `@advrec/data`.
 *
 * Every error carries a `Symbol.for` marker and a static `isInstance`, so a check
 * survives two copies of the package in one install (`instanceof` does not).
 * Each names what is at fault: the file and line for data files, the field for options.
 *
 * @packageDocumentation
 */

const ADVREC_ERROR = Symbol.for('advrec.error');
const DATA_FORMAT_ERROR = Symbol.for('advrec.error.DataFormatError');
const CONFIG_ERROR = Symbol.for('advrec.error.ConfigError');
const DATA_ERROR = Symbol.for('advrec.error.DataError');

function hasMarker(value: unknown, marker: symbol): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[marker] === true
  );
}

/** Base class of every advrec error. */
export class AdvrecError extends Error {
  readonly [ADVREC_ERROR] = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AdvrecError';
  }

  /** True for any advrec error, from any copy of the package. */
  static isInstance(value: unknown): value is AdvrecError {
    return hasMarker(value, ADVREC_ERROR);
  }
}

/** Where in a data file a problem was found. */
export interface DataLocation {
  /** Path of the file, as given by the caller. */
  readonly file: string;
  /** 1-based line number, or `undefined` for a problem with the file as a whole. */
  readonly line?: number | undefined;
}

/**
 * A data file does not have the expected format: a missing or empty file, a malformed
 * line, a non-numeric id, a rating that is not a number, a bad `.npy` header, a
 * feature matrix whose row count does not match, and so on.
 *
 * The message reads `file:line: expected <expected>, found <found>`.
 */
export class DataFormatError extends AdvrecError {
  readonly [DATA_FORMAT_ERROR] = true;
  /** Path of the offending file. */
  readonly file: string;
  /** 1-based line number (or, for binary files, undefined). */
  readonly line: number | undefined;
  /** What the reader expected at that place. */
  readonly expected: string;
  /** What it found instead (shortened). */
  readonly found: string | undefined;

  constructor(
    location: DataLocation,
    expected: string,
    found?: string,
    options?: { cause?: unknown },
  ) {
    const where = location.line === undefined ? location.file : `${location.file}:${location.line}`;
    const shown = found === undefined ? '' : `, found ${quote(found)}`;
    super(`${where}: expected ${expected}${shown}`, options);
    this.name = 'DataFormatError';
    this.file = location.file;
    this.line = location.line;
    this.expected = expected;
    this.found = found;
  }

  static override isInstance(value: unknown): value is DataFormatError {
    return hasMarker(value, DATA_FORMAT_ERROR);
  }
}

/** One problem found while validating options: the field path and what is wrong. */
export interface ConfigIssue {
  /** Dotted path of the option, e.g. `split.testFraction`. */
  readonly path: string;
  /** What is wrong with it. */
  readonly message: string;
}

/**
 * Options given to a function are invalid. Lists every problem found, each with its
 * field path, not only the first.
 */
export class ConfigError extends AdvrecError {
  readonly [CONFIG_ERROR] = true;
  /** Every problem found, with its field path. */
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(
      issues.length === 1
        ? `invalid option ${issues[0]!.path}: ${issues[0]!.message}`
        : `${issues.length} invalid options:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.issues = issues;
  }

  static override isInstance(value: unknown): value is ConfigError {
    return hasMarker(value, CONFIG_ERROR);
  }
}

/**
 * Data that is well formed but cannot be used as asked: an unknown id, a split that
 * leaves no training data, a user with no possible negative item.
 */
export class DataError extends AdvrecError {
  readonly [DATA_ERROR] = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataError';
  }

  static override isInstance(value: unknown): value is DataError {
    return hasMarker(value, DATA_ERROR);
  }
}

const WRITE_ERROR = Symbol.for('advrec.error.WriteError');

/**
 * A file could not be written completely (disk full, no permission, a folder where a file
 * should be): names the file and the system's reason; the previous file, if any, is kept.
 */
export class WriteError extends AdvrecError {
  readonly [WRITE_ERROR] = true;
  readonly file: string;
  /** The system error code (`ENOSPC`, `EACCES`, `EISDIR`, ...), when there is one. */
  readonly code: string | undefined;

  constructor(file: string, reason: string, code?: string, options?: { cause?: unknown }) {
    super(
      `could not write ${file}: ${reason}${code ? ` (${code})` : ''}; the previous file, if any, is kept`,
      options,
    );
    this.name = 'WriteError';
    this.file = file;
    this.code = code;
  }

  static override isInstance(value: unknown): value is WriteError {
    return hasMarker(value, WRITE_ERROR);
  }
}

function quote(text: string): string {
  const short = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return JSON.stringify(short);
}

/**
 * Collects option problems and throws them together.
 * @internal
 */
export class IssueCollector {
  readonly issues: ConfigIssue[] = [];

  add(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  /** Records a problem unless `value` is an integer within [min, max]. */
  integer(path: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.add(path, `must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
    }
  }

  /** Records a problem unless `value` is a finite number within [min, max] (bounds inclusive unless `open`). */
  number(path: string, value: unknown, min: number, max: number, open = false): void {
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (open ? value > min && value < max : value >= min && value <= max);
    if (!ok) {
      const range = open ? `(${min}, ${max})` : `[${min}, ${max}]`;
      this.add(path, `must be a number in ${range}, got ${JSON.stringify(value)}`);
    }
  }

  /** Records a problem unless `value` is one of `allowed`. */
  oneOf(path: string, value: unknown, allowed: readonly string[]): void {
    if (typeof value !== 'string' || !allowed.includes(value)) {
      this.add(
        path,
        `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(value)}`,
      );
    }
  }

  throwIfAny(): void {
    if (this.issues.length > 0) throw new ConfigError(this.issues);
  }
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps) between two strings. */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d = Array.from({ length: rows }, (_, i) => {
    const row = new Array<number>(cols).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j < cols; j++) d[0]![j] = j;
  for (let i = 1; i < rows; i++)
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  return d[a.length]![b.length]!;
}

/**
 * The candidate a mistyped name most likely meant, or null: the same name up to case and
 * `-`/`_`/`.` separators (`itempop` for `item-pop`, `ML100K` for `ml-100k`), else the closest
 * by edit distance when it is within a third of the name's length (`optimiser` for
 * `optimizer`, `mff` for `mf`). For "did you mean" hints in errors.
 */
export function closestName(name: string, candidates: Iterable<string>): string | null {
  const normal = (s: string): string => s.toLowerCase().replace(/[-_.\s]/g, '');
  const wanted = normal(name);
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === name) continue;
    const c = normal(candidate);
    if (c === wanted) return candidate;
    const distance = editDistance(wanted, c);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== null && bestDistance <= Math.max(1, Math.floor(wanted.length / 3)) ? best : null;
}

/** ` (did you mean "x"?)` for the closest candidate ({@link closestName}), or `''`. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const closest = closestName(name, candidates);
  return closest === null ? '' : ` (did you mean "${closest}"?)`;
}
