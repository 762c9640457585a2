// Builds the workspace packages the docs import (their dist/) when they are missing, so that
// `pnpm --filter docs build` works on a fresh clone. Under `pnpm build` (turbo) they are
// built first and this does nothing.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..');
const repo = join(docs, '..', '..');
const manifest = JSON.parse(readFileSync(join(docs, 'package.json'), 'utf8'));
const folders = { advrec: join(repo, 'apps', 'cli') };
const missing = Object.keys(manifest.dependencies ?? {}).filter((name) => {
  const folder = folders[name] ?? join(repo, 'packages', name.replace('@advrec/', ''));
  return !existsSync(join(folder, 'dist', 'index.js'));
});
if (missing.length > 0) {
  console.log(`docs: building ${missing.join(', ')} first (no dist/ yet)`);
  execFileSync(
    process.execPath,
    [
      join(repo, 'node_modules', 'turbo', 'bin', 'turbo'),
      'run',
      'build',
      '--filter=docs^...',
      '--output-logs=errors-only',
    ],
    { cwd: repo, stdio: 'inherit' },
  );
}
