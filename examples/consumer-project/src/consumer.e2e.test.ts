/**
 * The packages as a team outside this repository gets them: each public package is packed
 * to a tarball (`pnpm pack`, which turns `workspace:` ranges into versions), installed with
 * plain npm into a fresh project without optional dependencies (so onnxruntime-node is not
 * there), and each package README's example (the block marked `<!-- example: consumer -->`)
 * is
 * - type-checked with `skipLibCheck: false` (our declarations must not need the optional
 *   native package, or anything that is not shipped),
 * - compiled and run as an ES module (`.mts`) and as CommonJS (`.cts`, whose imports
 *   become `require` calls: Node >= 20.19 loads our ES modules through `require(esm)`).
 * The features example (it needs a CNN and images) is type-checked only. The installed
 * `advrec` command must answer `--version` with its package version, with no build step.
 * Each tarball is also linted: `publint --strict` (what is shipped and how it is exported)
 * and `@arethetypeswrong/cli` (types resolve as each resolution mode loads the code). attw
 * reports `require` of our ES modules as "ESM (dynamic import only)", which was true before
 * Node 20.19; our packages need Node >= 20.19 (`engines`), where `require(esm)` loads them
 * (the CommonJS runs below prove it), so that one rule is ignored; and attw's `node16`
 * profile leaves out TypeScript's legacy `node10` resolution, which ignores `exports` (it
 * cannot see the CLI's `advrec/run-config.schema.json` subpath). Every other rule holds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const require = createRequire(import.meta.url);

/** The published packages, by folder. */
const PACKAGES = [
  'packages/data',
  'packages/losses',
  'packages/onnx',
  'packages/models',
  'packages/adversary',
  'packages/metrics',
  'packages/trainer',
  'packages/features',
  'packages/neumf',
  'packages/sasrec',
  'packages/gru4rec',
  'packages/sweep',
  'apps/cli',
];

interface ReadmeExample {
  readonly name: string;
  readonly code: string;
  readonly typecheckOnly: boolean;
}

/** The `<!-- example: consumer [typecheck] -->` block of each package README. */
function readmeExamples(): ReadmeExample[] {
  const found: ReadmeExample[] = [];
  for (const folder of PACKAGES) {
    const text = readFileSync(join(repo, folder, 'README.md'), 'utf8');
    const match = /<!-- example: consumer( typecheck)? -->\s*```ts\n([\s\S]*?)\n```/.exec(text);
    if (match)
      found.push({
        name: folder.split('/')[1]!,
        code: match[2]!,
        typecheckOnly: match[1] !== undefined,
      });
  }
  return found;
}

/**
 * The same example as CommonJS: imports stay at the top (TypeScript turns them into
 * `require` calls in a `.cts` file), the rest runs in an async function (CommonJS has no
 * top-level await).
 */
function asCommonJs(code: string): string {
  const lines = code.split('\n');
  const imports: string[] = [];
  let k = 0;
  for (; k < lines.length; k++) {
    const line = lines[k]!;
    if (line.startsWith('import') || (imports.length > 0 && !imports.at(-1)!.includes(' from ')))
      imports.push(line);
    else if (line.trim() !== '' || imports.length === 0) break;
  }
  const body = lines.slice(k).join('\n');
  return `${imports.join('\n')}\n\nvoid (async () => {\n${body}\n})().catch((error: unknown) => {\n  console.error(error);\n  process.exitCode = 1;\n});\n`;
}

/** A child process environment without the npm_* / pnpm settings of the test runner. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!/^(npm_|pnpm_|NODE_PATH$|NODE_OPTIONS$|VITEST)/i.test(key)) env[key] = value;
  return env;
}

/** pnpm: the one running this suite (`npm_execpath`), else the README's `npx pnpm@10.34.9`. */
function pnpm(args: string[], cwd: string): string {
  const exec = process.env.npm_execpath;
  const [command, prefix] =
    exec && /pnpm/.test(exec) ? [process.execPath, [exec]] : ['npx', ['-y', 'pnpm@10.34.9']];
  return execFileSync(command, [...prefix, ...args], {
    cwd,
    encoding: 'utf8',
    env: cleanEnvironment(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function run(command: string, args: string[], cwd: string): { code: number; output: string } {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: cleanEnvironment(),
    timeout: 300_000,
  });
  return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

const examples = readmeExamples();
let project = '';
let tarballs = '';
let versions: Record<string, string> = {};

beforeAll(() => {
  const root = mkdtempSync(join(tmpdir(), 'advrec-consumer-'));
  tarballs = join(root, 'tarballs');
  mkdirSync(tarballs);
  for (const folder of PACKAGES) pnpm(['pack', '--pack-destination', tarballs], join(repo, folder));
  project = join(root, 'project');
  mkdirSync(join(project, 'src'), { recursive: true });
  const dependencies: Record<string, string> = {};
  for (const file of readdirSync(tarballs)) {
    // advrec-data-0.1.0.tgz -> @advrec/data; advrec-0.0.0.tgz -> advrec
    const name = file.replace(/-\d+\.\d+\.\d+.*\.tgz$/, '').replace(/^advrec-/, '@advrec/');
    dependencies[name] = `file:${join(tarballs, file)}`;
  }
  versions = Object.fromEntries(
    PACKAGES.map((folder) => {
      const manifest = JSON.parse(readFileSync(join(repo, folder, 'package.json'), 'utf8')) as {
        name: string;
        version: string;
      };
      return [manifest.name, manifest.version];
    }),
  );
  const typesNode = JSON.parse(
    readFileSync(require.resolve('@types/node/package.json'), 'utf8'),
  ) as { version: string };
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify(
      {
        name: 'consumer',
        private: true,
        dependencies,
        devDependencies: { '@types/node': typesNode.version },
      },
      null,
      2,
    ),
  );
  const install = run(
    'npm',
    [
      'install',
      '--omit=optional',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
    ],
    project,
  );
  expect(install.code, install.output).toBe(0);
  for (const example of examples) {
    writeFileSync(join(project, 'src', `${example.name}.mts`), `${example.code}\n`);
    if (!example.typecheckOnly)
      writeFileSync(join(project, 'src', `${example.name}.cts`), asCommonJs(example.code));
  }
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          // tfjs-core's own declarations name DOM types (as for any tfjs user).
          lib: ['ES2023', 'DOM'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: false,
          outDir: 'out',
          rootDir: 'src',
        },
        include: ['src'],
      },
      null,
      2,
    ),
  );
}, 420_000);

afterAll(() => {
  if (project && !process.env.ADVREC_KEEP_CONSUMER)
    rmSync(dirname(project), { recursive: true, force: true });
});

describe('a consumer project (packed tarballs, plain npm, no onnxruntime-node)', () => {
  it('has a README example for every package', () => {
    expect(examples.map((e) => e.name).sort()).toEqual(
      [
        'adversary',
        'data',
        'features',
        'losses',
        'metrics',
        'models',
        'gru4rec',
        'neumf',
        'onnx',
        'sasrec',
        'sweep',
        'trainer',
      ].sort(),
    );
  });

  it('installs without onnxruntime-node, and type-checks every example with skipLibCheck: false', () => {
    const probe = run(process.execPath, ['-e', "require.resolve('onnxruntime-node')"], project);
    expect(probe.output).toMatch(/Cannot find module 'onnxruntime-node'/);
    const tsc = require.resolve('typescript/bin/tsc');
    const result = run(process.execPath, [tsc, '-p', 'tsconfig.json'], project);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it.each(examples.filter((e) => !e.typecheckOnly).map((e) => [e.name]))(
    'runs the %s example as an ES module and as CommonJS (require)',
    (name) => {
      const esm = run(process.execPath, [join('out', `${name}.mjs`)], project);
      expect(esm.code, esm.output).toBe(0);
      const cjs = run(process.execPath, [join('out', `${name}.cjs`)], project);
      expect(cjs.code, cjs.output).toBe(0);
      // The CommonJS build really requires the packages.
      expect(readFileSync(join(project, 'out', `${name}.cjs`), 'utf8')).toMatch(
        /require\("@advrec\//,
      );
      // Same program, same output (the examples are seeded).
      const lines = (text: string): string[] =>
        text.split('\n').filter((l) => !/TensorFlow|tfjs-node|^=+$|^\s*$|fallback/.test(l));
      expect(lines(cjs.output)).toEqual(lines(esm.output));
    },
  );

  it('publint --strict finds nothing to fix in any tarball', async () => {
    const problems: string[] = [];
    for (const file of readdirSync(tarballs)) {
      const bytes = readFileSync(join(tarballs, file));
      const tarball = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      const { messages, pkg } = await publint({ pack: { tarball }, strict: true });
      for (const message of messages) problems.push(`${file}: ${formatMessage(message, pkg)}`);
    }
    expect(problems).toEqual([]);
  });

  it('are the types wrong? no: every entry point resolves under node16 (ESM and CJS) and bundler', () => {
    const attw = join(
      dirname(require.resolve('@arethetypeswrong/cli/package.json')),
      'dist',
      'index.js',
    );
    for (const file of readdirSync(tarballs)) {
      const result = run(
        process.execPath,
        [
          attw,
          join(tarballs, file),
          '--profile',
          'node16',
          '--ignore-rules',
          'cjs-resolves-to-esm',
          '--format',
          'ascii',
        ],
        project,
      );
      expect(result.code, `${file}\n${result.output}`).toBe(0);
    }
  });

  it('runs the installed advrec command with no build step: --version is the package version', () => {
    const result = run(join(project, 'node_modules', '.bin', 'advrec'), ['--version'], project);
    expect(result.code, result.output).toBe(0);
    expect(result.output.trim()).toBe(versions['advrec']);
  });
});
