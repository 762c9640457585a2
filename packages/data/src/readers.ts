import { DataFormatError, IssueCollector } from './errors.js';
import { type InteractionLog, InteractionLogBuilder } from './interaction-log.js';
import { readLines, type TextEncodingName } from './lines.js';

/** How ids are written in a file. */
export type IdFormat =
  /** Non-negative decimal integers (MovieLens, NCF, Gowalla, AMR); anything else is an error. */
  | 'integer'
  /** Any non-empty text (e.g. Amazon's `A2SUAM1J3GNN3B`). */
  | 'string';

/** A column given by 0-based position or by header name. */
export type ColumnRef = number | string;

/** Which columns hold what, for {@link readDelimited}. */
export interface ColumnMapping {
  readonly user: ColumnRef;
  readonly item: ColumnRef;
  readonly rating?: ColumnRef;
  readonly timestamp?: ColumnRef;
}

/** Options of {@link readDelimited}. */
export interface DelimitedOptions {
  /**
   * Field separator: `','`, `'\t'`, `'::'`, `';'`, `'|'`, `'whitespace'` (runs of blanks), or
   * `'auto'` (default: the first of tab, `::`, comma, semicolon, pipe found in the first line,
   * else whitespace).
   */
  readonly delimiter?: string;
  /**
   * Whether the first line is a header. `'auto'` (default): yes when a column is named,
   * or when a field that must be numeric (rating, timestamp, integer ids) is not numeric
   * on the first line, or when the id fields look like column names (`user`, `item`, ...).
   */
  readonly header?: boolean | 'auto';
  /** Column mapping (default: user 0, item 1, rating 2 and timestamp 3 when present). */
  readonly columns?: ColumnMapping;
  /** Id format (default `'string'`). */
  readonly idFormat?: IdFormat;
  /** `'number'` (default, e.g. Unix seconds) or `'date'` (anything `Date.parse` reads, stored as ms). */
  readonly timestampFormat?: 'number' | 'date';
  /** Text encoding (default utf-8). */
  readonly encoding?: TextEncodingName;
}

interface ResolvedColumns {
  user: number;
  item: number;
  rating: number;
  timestamp: number;
  required: number;
}

const DELIMITER_NAMES: Record<string, string> = {
  '\t': 'tab',
  ',': 'comma',
  '::': '"::"',
  ';': 'semicolon',
  '|': 'pipe',
  whitespace: 'whitespace',
};

/**
 * Reads a delimited interaction file (CSV, TSV, `::`-separated, ...) with column mapping
 * and header detection, streaming it line by line. Blank lines are skipped; a CSV field
 * may be double-quoted (`"a,b"`, `""` for a quote) and, as RFC 4180 allows, hold line
 * breaks inside the quotes.
 *
 * @example
 * MovieLens latest `ratings.csv` (a `userId,movieId,rating,timestamp` header):
 * ```ts
 * const log = await readDelimited('ratings.csv', { idFormat: 'integer' });
 * ```
 * @throws {@link DataFormatError} naming the file and line: too few fields, an empty or
 * non-integer id, a rating or timestamp that is not a number, a header without a named column.
 */
export async function readDelimited(
  file: string,
  options: DelimitedOptions = {},
): Promise<InteractionLog> {
  const issues = new IssueCollector();
  if (options.delimiter !== undefined && options.delimiter !== 'auto' && options.delimiter === '') {
    issues.add('delimiter', 'must not be empty');
  }
  if (options.idFormat !== undefined)
    issues.oneOf('idFormat', options.idFormat, ['integer', 'string']);
  if (options.timestampFormat !== undefined) {
    issues.oneOf('timestampFormat', options.timestampFormat, ['number', 'date']);
  }
  if (
    options.header !== undefined &&
    typeof options.header !== 'boolean' &&
    options.header !== 'auto'
  ) {
    issues.add('header', `must be true, false or "auto", got ${JSON.stringify(options.header)}`);
  }
  issues.throwIfAny();

  const idFormat = options.idFormat ?? 'string';
  const timestampFormat = options.timestampFormat ?? 'number';
  let delimiter = options.delimiter ?? 'auto';
  let columns: ResolvedColumns | undefined;
  let builder: InteractionLogBuilder | undefined;
  let split: (line: string, lineNumber: number) => string[] = () => [];

  // RFC 4180: a quoted CSV field may hold line breaks. A line that ends inside a quoted field
  // (a quote at the start of a field, not closed) is joined with the next lines until the
  // field closes, and the record is reported at the line it starts on. A stray quote inside
  // an unquoted field (`6" screen`) opens nothing.
  let pending: string | null = null;
  let pendingLine = 0;
  await readLines(
    file,
    (rawLine, rawLineNumber) => {
      let line = rawLine;
      let lineNumber = rawLineNumber;
      if (pending !== null) {
        pending += `\n${rawLine}`;
        if (endsInsideQuotes(pending)) return;
        line = pending;
        lineNumber = pendingLine;
        pending = null;
      } else if (
        (delimiter === ',' || (delimiter === 'auto' && builder === undefined)) &&
        rawLine.includes('"') &&
        rawLine.includes(',') &&
        endsInsideQuotes(rawLine)
      ) {
        pending = rawLine;
        pendingLine = rawLineNumber;
        return;
      }
      if (isBlank(line)) return;
      if (builder === undefined) {
        if (delimiter === 'auto') delimiter = detectDelimiter(line);
        split = makeSplitter(file, delimiter);
        const fields = split(line, lineNumber);
        const isHeader = decideHeader(fields, options, idFormat);
        columns = resolveColumns(file, lineNumber, fields, options.columns, isHeader);
        builder = new InteractionLogBuilder(file, columns.rating >= 0, columns.timestamp >= 0);
        if (isHeader) return;
      }
      const fields = split(line, lineNumber);
      const c = columns!;
      if (fields.length < c.required) {
        throw new DataFormatError(
          { file, line: lineNumber },
          `at least ${c.required} ${DELIMITER_NAMES[delimiter] ?? JSON.stringify(delimiter)}-separated fields`,
          line,
        );
      }
      const b = builder;
      const user = b.addUser(parseId(fields[c.user]!, idFormat, 'user', file, lineNumber));
      const item = b.addItem(parseId(fields[c.item]!, idFormat, 'item', file, lineNumber));
      const rating = c.rating >= 0 ? parseRating(fields[c.rating]!, file, lineNumber) : Number.NaN;
      const timestamp =
        c.timestamp >= 0
          ? parseTimestamp(fields[c.timestamp]!, timestampFormat, file, lineNumber)
          : Number.NaN;
      b.push(user, item, rating, timestamp);
    },
    { encoding: options.encoding ?? 'utf-8' },
  );
  if (pending !== null)
    throw new DataFormatError(
      { file, line: pendingLine },
      'a closing double quote in a quoted field',
      'the file ends inside the quoted field opened on this line',
    );
  if (builder === undefined || builder.length === 0) {
    throw new DataFormatError({ file }, 'at least one interaction line', 'no data lines');
  }
  return builder.finish();
}

/**
 * Reads MovieLens 100K `u.data`: `user<TAB>item<TAB>rating<TAB>unix_time`, integer ids.
 * Also reads the NCF files of the APR repository (`.train.rating`, `.test.rating`), which
 * share the layout.
 */
export function readMovieLens100K(file: string): Promise<InteractionLog> {
  return readDelimited(file, {
    delimiter: '\t',
    header: false,
    idFormat: 'integer',
    columns: { user: 0, item: 1, rating: 2, timestamp: 3 },
  });
}

/** Reads the NCF rating files of the APR repository (`.train.rating`, `.test.rating`). */
export const readNcfRatings = readMovieLens100K;

/** Reads MovieLens 1M/10M `ratings.dat`: `UserID::MovieID::Rating::Timestamp`, integer ids. */
export function readMovieLensRatingsDat(file: string): Promise<InteractionLog> {
  return readDelimited(file, {
    delimiter: '::',
    header: false,
    idFormat: 'integer',
    columns: { user: 0, item: 1, rating: 2, timestamp: 3 },
  });
}

/** Options of {@link readUserItemLists}. */
export interface UserItemListOptions {
  /** Id format (default `'integer'`). */
  readonly idFormat?: IdFormat;
}

/**
 * Reads a per-user list file: one line per user, `user item item ...`, blank-separated
 * (the Gowalla split of NGCF/LightGCN, the ML-1M files in `shared/data`). A line with a
 * user and no item registers the user with no interaction. No ratings, no timestamps.
 *
 * @throws {@link DataFormatError} naming the file and line for a non-integer id (with
 * `idFormat: 'integer'`).
 */
export async function readUserItemLists(
  file: string,
  options: UserItemListOptions = {},
): Promise<InteractionLog> {
  const idFormat = options.idFormat ?? 'integer';
  const builder = new InteractionLogBuilder(file, false, false);
  await readLines(file, (line, lineNumber) => {
    if (idFormat === 'integer') parseIntegerListLine(builder, line, file, lineNumber);
    else {
      const tokens = line.trim().split(/\s+/);
      if (tokens[0] === '') return;
      const user = builder.addUser(tokens[0]!);
      for (let t = 1; t < tokens.length; t++) builder.push(user, builder.addItem(tokens[t]!));
    }
  });
  if (builder.length === 0) {
    throw new DataFormatError(
      { file },
      'at least one "user item ..." line with an item',
      'no interactions',
    );
  }
  return builder.finish();
}

/** Options of {@link readSequenceLog}: those of {@link readDelimited} but the columns. */
export type SequenceLogOptions = Omit<DelimitedOptions, 'columns'>;

/**
 * Reads a sequence log, as sequential models read one: `user item` (the file's order),
 * `user item timestamp`, or `user item rating timestamp` (MovieLens style), told apart by the
 * number of fields on the first line; any delimiter and header {@link readDelimited} takes.
 * A timestamp that is not a number is reported as a timestamp, with its file and line.
 */
export async function readSequenceLog(
  file: string,
  options: SequenceLogOptions = {},
): Promise<InteractionLog> {
  const encoding = options.encoding ?? 'utf-8';
  let first: string | null = null;
  const found = new Error('first line read');
  try {
    await readLines(
      file,
      (line) => {
        if (isBlank(line)) return;
        first = line;
        throw found;
      },
      { encoding },
    );
  } catch (error) {
    if (error !== found) throw error;
  }
  if (first === null)
    throw new DataFormatError({ file }, 'at least one interaction line', 'no data lines');
  const line: string = first;
  const delimiter =
    options.delimiter === undefined || options.delimiter === 'auto'
      ? detectDelimiter(line)
      : options.delimiter;
  const fields = makeSplitter(file, delimiter)(line, 1).length;
  const columns: ColumnMapping =
    fields <= 2
      ? { user: 0, item: 1 }
      : fields === 3
        ? { user: 0, item: 1, timestamp: 2 }
        : { user: 0, item: 1, rating: 2, timestamp: 3 };
  return readDelimited(file, { ...options, columns });
}

/** Reads the AMR repository's `pos.txt`: `user item` per line (duplicates are kept; see `dedupe`). */
export function readAmrPositives(file: string): Promise<InteractionLog> {
  return readDelimited(file, {
    delimiter: 'whitespace',
    header: false,
    idFormat: 'integer',
    columns: { user: 0, item: 1 },
  });
}

/** Fast path for integer list lines: scans char codes, no regex, no substrings. */
function parseIntegerListLine(
  builder: InteractionLogBuilder,
  line: string,
  file: string,
  lineNumber: number,
): void {
  const n = line.length;
  let p = 0;
  let user = -1;
  while (p < n) {
    let c = line.charCodeAt(p);
    if (c === 32 || c === 9) {
      p++;
      continue;
    }
    const start = p;
    let value = 0;
    while (p < n && (c = line.charCodeAt(p)) !== 32 && c !== 9) {
      const digit = c - 48;
      if (digit < 0 || digit > 9 || value * 10 + digit > Number.MAX_SAFE_INTEGER) {
        let end = p;
        while (end < n && line.charCodeAt(end) !== 32 && line.charCodeAt(end) !== 9) end++;
        throw new DataFormatError(
          { file, line: lineNumber },
          digit < 0 || digit > 9
            ? `an integer ${user < 0 ? 'user' : 'item'} id`
            : `an integer ${user < 0 ? 'user' : 'item'} id up to 2^53 - 1 (${Number.MAX_SAFE_INTEGER}); read larger ids as text (csv with idFormat "string")`,
          line.slice(start, end),
        );
      }
      value = value * 10 + digit;
      p++;
    }
    if (user < 0) user = builder.addIntegerUser(value);
    else builder.push(user, builder.addIntegerItem(value));
  }
}

function isBlank(line: string): boolean {
  for (let k = 0; k < line.length; k++) {
    const c = line.charCodeAt(k);
    if (c !== 32 && c !== 9) return false;
  }
  return true;
}

/** @internal */
export function detectDelimiter(line: string): string {
  if (line.includes('\t')) return '\t';
  if (line.includes('::')) return '::';
  if (line.includes(',')) return ',';
  if (line.includes(';')) return ';';
  if (line.includes('|')) return '|';
  return 'whitespace';
}

/** Whether a CSV record ends inside a quoted field (RFC 4180 quoting; `""` is a quote). */
function endsInsideQuotes(text: string): boolean {
  let inside = false;
  for (let k = 0; k < text.length; k++) {
    if (text.charCodeAt(k) !== 34) continue;
    if (!inside) {
      if (k === 0 || text.charCodeAt(k - 1) === 44) inside = true;
    } else if (text.charCodeAt(k + 1) === 34) k++;
    else inside = false;
  }
  return inside;
}

/** @internal */
export function makeSplitter(
  file: string,
  delimiter: string,
): (line: string, lineNumber: number) => string[] {
  if (delimiter === 'whitespace') return (line) => line.trim().split(/\s+/);
  if (delimiter === ',') {
    return (line, lineNumber) =>
      line.includes('"') ? splitQuotedCsv(line, file, lineNumber) : line.split(',');
  }
  return (line) => line.split(delimiter);
}

function splitQuotedCsv(line: string, file: string, lineNumber: number): string[] {
  const fields: string[] = [];
  let p = 0;
  for (;;) {
    if (line.charCodeAt(p) === 34) {
      let value = '';
      p++;
      for (;;) {
        const q = line.indexOf('"', p);
        if (q < 0) {
          throw new DataFormatError(
            { file, line: lineNumber },
            'a closing double quote in a quoted field',
            line,
          );
        }
        value += line.slice(p, q);
        if (line.charCodeAt(q + 1) === 34) {
          value += '"';
          p = q + 2;
        } else {
          p = q + 1;
          break;
        }
      }
      fields.push(value);
      if (p >= line.length) return fields;
      if (line.charCodeAt(p) !== 44) {
        throw new DataFormatError({ file, line: lineNumber }, 'a comma after a quoted field', line);
      }
      p++;
    } else {
      const comma = line.indexOf(',', p);
      if (comma < 0) {
        fields.push(line.slice(p));
        return fields;
      }
      fields.push(line.slice(p, comma));
      p = comma + 1;
    }
  }
}

const HEADER_WORD = /^(user|item|movie|product|business|rating|time|timestamp|date)/i;

function decideHeader(
  fields: readonly string[],
  options: DelimitedOptions,
  idFormat: IdFormat,
): boolean {
  if (options.header === true || options.header === false) return options.header;
  const columns = options.columns;
  if (columns && Object.values(columns).some((c) => typeof c === 'string')) return true;
  const at = (ref: ColumnRef | undefined, fallback: number): string | undefined =>
    typeof ref === 'number' ? fields[ref] : ref === undefined ? fields[fallback] : undefined;
  const userField = at(columns?.user, 0);
  const itemField = at(columns?.item, 1);
  const numericFields = [
    columns ? at(columns.rating, -1) : fields[2],
    columns ? at(columns.timestamp, -1) : fields[3],
  ];
  if (idFormat === 'integer') numericFields.push(userField, itemField);
  if (
    numericFields.some(
      (f) => f !== undefined && !Number.isFinite(Number(f.trim() === '' ? 'x' : f)),
    )
  ) {
    return true;
  }
  return [userField, itemField].some((f) => f !== undefined && HEADER_WORD.test(f.trim()));
}

function resolveColumns(
  file: string,
  lineNumber: number,
  fields: readonly string[],
  mapping: ColumnMapping | undefined,
  isHeader: boolean,
): ResolvedColumns {
  const names = isHeader ? fields.map((f) => f.trim()) : [];
  const resolve = (ref: ColumnRef | undefined, what: string): number => {
    if (ref === undefined) return -1;
    if (typeof ref === 'number') {
      if (!Number.isInteger(ref) || ref < 0) {
        throw new DataFormatError(
          { file, line: lineNumber },
          `a non-negative column index for ${what}`,
          String(ref),
        );
      }
      return ref;
    }
    const index = names.indexOf(ref);
    if (index < 0) {
      throw new DataFormatError(
        { file, line: lineNumber },
        `a header with a column named ${JSON.stringify(ref)} for ${what}`,
        fields.join(','),
      );
    }
    return index;
  };
  let result: ResolvedColumns;
  if (mapping) {
    result = {
      user: resolve(mapping.user, 'user'),
      item: resolve(mapping.item, 'item'),
      rating: resolve(mapping.rating, 'rating'),
      timestamp: resolve(mapping.timestamp, 'timestamp'),
      required: 0,
    };
  } else {
    result = {
      user: 0,
      item: 1,
      rating: fields.length > 2 ? 2 : -1,
      timestamp: fields.length > 3 ? 3 : -1,
      required: 0,
    };
  }
  result.required = Math.max(result.user, result.item, result.rating, result.timestamp) + 1;
  return result;
}

function parseId(
  field: string,
  format: IdFormat,
  what: string,
  file: string,
  line: number,
): string {
  const id = field.trim();
  if (format === 'integer') {
    if (!/^\d+$/.test(id))
      throw new DataFormatError({ file, line }, `an integer ${what} id`, field);
    // Leading zeros dropped as text: ids beyond 2^53 stay distinct (no Number round trip).
    return id.length > 1 && id.charCodeAt(0) === 48 ? id.replace(/^0+(?=\d)/, '') : id;
  }
  if (id === '') throw new DataFormatError({ file, line }, `a non-empty ${what} id`, field);
  return id;
}

function parseRating(field: string, file: string, line: number): number {
  const text = field.trim();
  const value = text === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value)) throw new DataFormatError({ file, line }, 'a numeric rating', field);
  return value;
}

function parseTimestamp(
  field: string,
  format: 'number' | 'date',
  file: string,
  line: number,
): number {
  const text = field.trim();
  if (format === 'date') {
    const ms = Date.parse(text);
    if (!Number.isFinite(ms)) throw new DataFormatError({ file, line }, 'a date timestamp', field);
    return ms;
  }
  const value = text === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value))
    throw new DataFormatError({ file, line }, 'a numeric timestamp', field);
  return value;
}

/** The three logs of an MMRec `.inter` file, by its `x_label` column. */
export interface MmrecSplit {
  /** `x_label` 0. */
  readonly train: InteractionLog;
  /** `x_label` 1. */
  readonly validation: InteractionLog;
  /** `x_label` 2. */
  readonly test: InteractionLog;
}

/**
 * Reads an MMRec `.inter` file (the multimodal benchmarks' layout: a tab-separated header
 * naming `userID`, `itemID`, optionally `rating` and `timestamp`, and `x_label`, whose value
 * puts the row in train (0), validation (1) or test (2)). Pass the result to
 * {@link givenSplit} (`givenSplit(train, test, { validation })`) to keep MMRec's split.
 *
 * @throws {@link DataFormatError} naming the file and line: a header without one of the
 * required columns, a row with too few fields, an `x_label` other than 0, 1 or 2, a rating
 * or timestamp that is not a number.
 */
export async function readMmrecInter(file: string): Promise<MmrecSplit> {
  let columns: {
    user: number;
    item: number;
    label: number;
    rating: number;
    timestamp: number;
  } | null = null;
  let builders: InteractionLogBuilder[] = [];
  await readLines(file, (line, lineNumber) => {
    if (isBlank(line)) return;
    const fields = line.split('\t');
    if (columns === null) {
      const at = (name: string): number => fields.findIndex((f) => f.trim() === name);
      columns = {
        user: at('userID'),
        item: at('itemID'),
        label: at('x_label'),
        rating: at('rating'),
        timestamp: at('timestamp'),
      };
      const missing = (['userID', 'itemID', 'x_label'] as const).filter(
        (_, k) => [columns!.user, columns!.item, columns!.label][k]! < 0,
      );
      if (missing.length > 0)
        throw new DataFormatError(
          { file, line: lineNumber },
          'an MMRec header naming userID, itemID and x_label (tab-separated)',
          `no ${missing.join(', ')} column in "${line.slice(0, 80)}"`,
        );
      builders = [0, 1, 2].map(
        (k) =>
          new InteractionLogBuilder(
            `${file} (${['train', 'validation', 'test'][k]})`,
            columns!.rating >= 0,
            columns!.timestamp >= 0,
          ),
      );
      return;
    }
    const c = columns;
    const needed = Math.max(c.user, c.item, c.label, c.rating, c.timestamp) + 1;
    if (fields.length < needed)
      throw new DataFormatError({ file, line: lineNumber }, `${needed} tab-separated fields`, line);
    const label = fields[c.label]!.trim();
    if (label !== '0' && label !== '1' && label !== '2')
      throw new DataFormatError(
        { file, line: lineNumber },
        'an x_label of 0 (train), 1 (validation) or 2 (test)',
        JSON.stringify(label),
      );
    const b = builders[Number(label)]!;
    const user = b.addUser(fields[c.user]!.trim());
    const item = b.addItem(fields[c.item]!.trim());
    b.push(
      user,
      item,
      c.rating >= 0 ? parseRating(fields[c.rating]!.trim(), file, lineNumber) : Number.NaN,
      c.timestamp >= 0
        ? parseTimestamp(fields[c.timestamp]!.trim(), 'number', file, lineNumber)
        : Number.NaN,
    );
  });
  if (columns === null || builders[0]!.length === 0 || builders[2]!.length === 0)
    throw new DataFormatError(
      { file },
      'an MMRec .inter file with train (x_label 0) and test (x_label 2) rows',
      columns === null ? 'no header' : 'no train or no test rows',
    );
  const [train, validation, test] = builders.map((b) => b.finish()) as [
    InteractionLog,
    InteractionLog,
    InteractionLog,
  ];
  return { train, validation, test };
}
