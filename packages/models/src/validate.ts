import { ConfigError, DataError } from '@advrec/data';
import type { ConfigIssue } from '@advrec/data';

/** Runs `check`, collecting every issue it reports; throws one ConfigError listing them all. */
export function collectIssues(
  check: (issue: (path: string, message: string) => void) => void,
): void {
  const issues: ConfigIssue[] = [];
  check((path, message) => issues.push({ path, message }));
  if (issues.length > 0) throw new ConfigError(issues);
}

/** Reports every key of `config` that is not one of `known` (a typo or another model's option). */
export function checkKnownOptions(
  config: object,
  known: readonly string[],
  model: string,
  issue: (path: string, message: string) => void,
): void {
  for (const key of Object.keys(config))
    if (!known.includes(key))
      issue(key, `unknown option of ${model}; it takes ${known.join(', ')}`);
}

/** Throws a DataError naming the first user id outside `[0, numUsers)`. */
export function checkUsers(
  model: { numUsers: number },
  users: Int32Array,
  count = users.length,
): void {
  for (let t = 0; t < count; t++) {
    const u = users[t]!;
    if (!(u >= 0 && u < model.numUsers))
      throw new DataError(`user id ${u} at position ${t} is outside [0, ${model.numUsers})`);
  }
}

/** Throws a DataError for a length mismatch or an id out of range. */
export function checkPairs(
  model: { numUsers: number; numItems: number },
  users: Int32Array,
  items: Int32Array,
  count: number,
): void {
  if (!Number.isInteger(count) || count < 0 || count > users.length || count > items.length)
    throw new DataError(
      `pair count ${count} does not fit users (${users.length}) and items (${items.length})`,
    );
  checkUsers(model, users, count);
  for (let t = 0; t < count; t++) {
    const i = items[t]!;
    if (!(i >= 0 && i < model.numItems))
      throw new DataError(`item id ${i} at position ${t} is outside [0, ${model.numItems})`);
  }
}
