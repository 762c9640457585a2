/** A small sequential data set for the e2e tests, cut from the shared Amazon Games file. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes the first 3,000 lines of the shared Amazon Games file (about 320 users, in time
 * order) to `<folder>/games-head.txt` and returns its path.
 */
export function writeGamesHead(shared: string, folder: string): string {
  const file = join(folder, 'games-head.txt');
  const lines = readFileSync(join(shared, 'amazon-games-sasrec', 'Video.txt'), 'utf8')
    .split('\n')
    .slice(0, 3000);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}
