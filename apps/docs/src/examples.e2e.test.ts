/**
 * Every code example in the hand-written docs pages is extracted, type-checked, and run
 * (or, for `<!-- example: typecheck -->` blocks, only type-checked), so the docs cannot rot.
 * A TypeScript block without an `<!-- example: ... -->` marker fails the suite.
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sharedDataDir, sharedDataFiles } from '@advrec/testing';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..');
const examples = join(docs, '.examples');
const require = createRequire(import.meta.url);

interface Example {
  readonly page: string;
  readonly index: number;
  readonly mode: 'run' | 'typecheck' | 'file';
  readonly language: string;
  readonly fileName: string;
  readonly code: string;
}

function pages(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory())
      return ['guide', 'concepts', 'packages'].includes(entry.name) ? pages(path) : [];
    return entry.name.endsWith('.md') && entry.name !== 'README.md' ? [path] : [];
  });
}

/** Code blocks of the hand-written pages (generated reference pages have none to run). */
function extract(): { examples: Example[]; unmarked: string[] } {
  const found: Example[] = [];
  const unmarked: string[] = [];
  for (const file of pages(docs)) {
    const page = relative(docs, file).replace(/\.md$/, '').replace(/[\\/]/g, '-');
    const lines = readFileSync(file, 'utf8').split('\n');
    let index = 0;
    for (let k = 0; k < lines.length; k++) {
      const open = /^```(ts|typescript|js|mjs)\b/.exec(lines[k]!);
      if (!open) continue;
      const end = lines.indexOf('```', k + 1);
      const code = lines.slice(k + 1, end).join('\n');
      const marker = lines
        .slice(Math.max(0, k - 3), k)
        .map((l) => /<!-- example: (run|typecheck|file) ?([\w.-]*) -->/.exec(l))
        .findLast((m) => m !== null);
      index++;
      if (!marker) unmarked.push(`${relative(docs, file)}:${k + 1}`);
      else {
        const mode = marker[1] as Example['mode'];
        const language = open[1] === 'typescript' ? 'ts' : open[1]!;
        found.push({
          page,
          index,
          mode,
          language,
          fileName:
            mode === 'file' ? marker[2]! : `${page}-${index}.${language === 'ts' ? 'ts' : 'mjs'}`,
          code,
        });
      }
      k = end;
    }
  }
  return { examples: found, unmarked };
}

function run(
  command: string,
  args: readonly string[],
  cwd: string,
  timeout = 120_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, FORCE_COLOR: '0' }, timeout });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, output }));
  });
}

const { examples: all, unmarked } = extract();

/** A working folder with the shared data under the names the examples use. */
function workingFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'advrec-docs-'));
  const shared = sharedDataDir();
  symlinkSync(join(shared, 'movielens-100k'), join(folder, 'ml-100k'));
  symlinkSync(join(shared, 'ml-1m', 'posters'), join(folder, 'posters'));
  symlinkSync(join(shared, '..', 'models'), join(folder, 'models'));
  return folder;
}

describe('docs code examples', () => {
  it('every TypeScript/JavaScript block is marked run, typecheck or file', () => {
    expect(unmarked).toEqual([]);
    expect(all.filter((e) => e.mode === 'run').length).toBeGreaterThanOrEqual(9);
  });

  it('type-check together against the workspace packages', async () => {
    rmSync(examples, { recursive: true, force: true });
    mkdirSync(examples, { recursive: true });
    for (const e of all) writeFileSync(join(examples, e.fileName), `${e.code}\n`);
    writeFileSync(
      join(examples, 'tsconfig.json'),
      JSON.stringify({
        extends: '../../../tsconfig.base.json',
        compilerOptions: { noEmit: true, allowJs: true, checkJs: false, rootDir: '.' },
        include: ['*.ts', '*.mjs'],
      }),
    );
    const tsc = require.resolve('typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', join(examples, 'tsconfig.json')], docs);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  }, 120_000);

  for (const e of all.filter((x) => x.mode === 'run'))
    it(`runs ${e.page} example ${e.index}`, async () => {
      const file = join(examples, e.fileName);
      if (!existsSync(file)) writeFileSync(file, `${e.code}\n`);
      const tsx = require.resolve('tsx');
      const result = await run(process.execPath, ['--import', tsx, file], workingFolder());
      expect(result.code, result.output).toBe(0);
      // Examples print their checks: an error, a NaN or a false one fails the page.
      expect(result.output).not.toMatch(/Error|NaN|\bfalse\b/);
    }, 120_000);

  it('the plugin-guide model registers from the CLI and trains', async () => {
    const plugin = all.find((e) => e.mode === 'file' && e.fileName === 'biased-mf.mjs');
    expect(plugin).toBeDefined();
    const file = join(examples, plugin!.fileName);
    if (!existsSync(file)) {
      mkdirSync(examples, { recursive: true });
      writeFileSync(file, `${plugin!.code}\n`);
    }
    const bin = join(docs, '..', 'cli', 'dist', 'bin.js');
    const out = join(mkdtempSync(join(tmpdir(), 'advrec-docs-plugin-')), 'run');
    const result = await run(
      process.execPath,
      [
        bin,
        '--plugin',
        file,
        '--quiet',
        'train',
        '--data',
        sharedDataFiles().movielens100k,
        '--model',
        'biased-mf',
        '--epochs',
        '2',
        '--adversarial-epochs',
        '1',
        '--set',
        'evaluation.cutoffs=[10]',
        '--out',
        out,
      ],
      docs,
    );
    expect(result.code, result.output).toBe(0);
    // One adversarial epoch: the result row names the model and its adversarial training.
    expect(result.output).toMatch(/biased-mf \+ APR\s+\d\.\d{4}/);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).model.name).toBe('biased-mf');
  }, 120_000);
});
