/**
 * The import graph of every package and app, checked with dependency-cruiser (DESIGN.md:
 * arrows point one way): no circles (type-only imports included), no arrow from a lower
 * package to a higher one, no reaching into another package's files, and a CLI that imports
 * no model class (it asks the registries and the library).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise } from 'dependency-cruiser';
import ts from 'typescript';
import type { ICruiseResult } from 'dependency-cruiser';
import { beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Floors, lowest first: a package may import only packages on lower floors. `data`, `onnx`,
 * `losses` and the test helpers depend on nothing of ours; the apps, the benchmarks and the
 * examples sit on top.
 */
const FLOORS: Readonly<Record<string, number>> = {
  '@advrec/data': 0,
  '@advrec/onnx': 0,
  '@advrec/losses': 0,
  '@advrec/testing': -1,
  '@advrec/models': 1,
  '@advrec/adversary': 2,
  '@advrec/features': 2,
  '@advrec/neumf': 2,
  '@advrec/sasrec': 2,
  '@advrec/gru4rec': 2,
  '@advrec/metrics': 3,
  '@advrec/trainer': 4,
  '@advrec/sweep': 5,
  '@advrec/example-plugin-pgd': 6,
  advrec: 7,
  docs: 8,
  '@advrec/bench': 8,
  '@advrec/example-consumer-project': 8,
};

/** Model classes: the CLI asks the model registry and the library, it imports none of them. */
const MODEL_CLASSES = [
  'MatrixFactorization',
  'VisualBPR',
  'ItemPop',
  'TfjsModel',
  'NeuMF',
  'SASRec',
  'GRU4Rec',
];

/** Every workspace folder with its package name. */
function workspaces(): { folder: string; name: string }[] {
  return ['packages', 'apps', 'examples', 'bench'].flatMap((top) => {
    const folders =
      top === 'bench'
        ? ['bench']
        : readdirSync(join(root, top), { withFileTypes: true })
            .filter((d) => d.isDirectory())
            .map((d) => join(top, d.name));
    return folders.flatMap((folder) => {
      try {
        const pkg = JSON.parse(readFileSync(join(root, folder, 'package.json'), 'utf8')) as {
          name: string;
        };
        return [{ folder, name: pkg.name }];
      } catch {
        return [];
      }
    });
  });
}

const spaces = workspaces();
const packageOfPath = (path: string): string | null =>
  spaces.find((s) => path === s.folder || path.startsWith(`${s.folder}/`))?.name ?? null;
const packageOfSpecifier = (specifier: string): string | null => {
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return name in FLOORS ? name : null;
};

let result: ICruiseResult;

beforeAll(async () => {
  const sources = spaces
    .map((s) => join(s.folder, 'src'))
    .filter((f) => {
      try {
        return readdirSync(join(root, f)).length > 0;
      } catch {
        return false;
      }
    });
  const cwd = process.cwd();
  process.chdir(root);
  try {
    const cruised = await cruise(
      sources,
      {
        // Recorded, not followed: a package's built files stand for the package.
        doNotFollow: { path: '(^|/)(node_modules|dist)/' },
        tsPreCompilationDeps: true,
        ruleSet: {
          forbidden: [{ name: 'no-circular', severity: 'error', from: {}, to: { circular: true } }],
        },
      },
      undefined,
      { tsConfig: { fileName: 'tsconfig.base.json' } },
    );
    result = cruised.output as ICruiseResult;
  } finally {
    process.chdir(cwd);
  }
});

describe('the import graph', () => {
  it('covers every package and app', () => {
    const covered = new Set(result.modules.map((m) => packageOfPath(m.source)));
    for (const name of [
      '@advrec/data',
      '@advrec/models',
      '@advrec/trainer',
      'advrec',
      '@advrec/bench',
    ])
      expect(covered.has(name), name).toBe(true);
    expect(result.modules.length).toBeGreaterThan(200);
  });

  it('has no circles, type-only imports included', () => {
    const circles = result.summary.violations
      .filter((v) => v.rule.name === 'no-circular')
      .map((v) =>
        [v.from, ...(v.cycle ?? []).map((c) => (typeof c === 'string' ? c : c.name))].join(' -> '),
      );
    expect(circles).toEqual([]);
  });

  it('has no arrow from a lower package to a higher one in shipped code, and none into another package’s files', () => {
    const wrong: string[] = [];
    for (const m of result.modules) {
      if (/(^|\/)(node_modules|dist)\//.test(m.source)) continue;
      // A package's own tests may train what it defines through a higher package (its
      // devDependency: SASRec's tests train through the trainer); shipped code may not.
      if (/\.test\.ts$|\/test-support\//.test(m.source)) continue;
      const from = packageOfPath(m.source);
      if (from === null || !(from in FLOORS)) continue;
      for (const d of m.dependencies) {
        const byName = packageOfSpecifier(d.module);
        if (byName !== null && byName !== from && FLOORS[byName]! >= FLOORS[from]!)
          wrong.push(
            `${m.source} imports ${d.module} (floor ${FLOORS[byName]} >= ${FLOORS[from]})`,
          );
        if (d.module.startsWith('.')) {
          const target = packageOfPath(d.resolved);
          if (target !== null && target !== from)
            wrong.push(`${m.source} reaches into ${relative('.', d.resolved)} of ${target}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('the CLI imports no model class', () => {
    const wrong: string[] = [];
    for (const m of result.modules) {
      if (!m.source.startsWith('apps/cli/src/') || m.source.endsWith('.test.ts')) continue;
      const text = readFileSync(join(root, m.source), 'utf8');
      for (const match of text.matchAll(
        /^import\s+(type\s+)?\{([^}]*)\}\s+from\s+'(@advrec\/[^']+)'/gm,
      )) {
        if (match[1]) continue; // types only: nothing is loaded
        for (const name of match[2]!.split(',').map((n) =>
          n
            .trim()
            .replace(/^type\s+/, '')
            .replace(/\s+as\s+\w+$/, ''),
        ))
          if (MODEL_CLASSES.includes(name))
            wrong.push(`${m.source} imports ${name} from ${match[3]}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('the checks have teeth: a known arrow is seen', () => {
    const trainer = result.modules.find((m) => m.source === 'packages/trainer/src/schedule.ts');
    expect(trainer?.dependencies.some((d) => d.module === '@advrec/models')).toBe(true);
  });
});

/** The longest a hand-written function may be (issue 30: rooms a reader can follow). */
const MAX_FUNCTION_LINES = 150;

/** Functions (declarations, methods, arrows) of `MAX_FUNCTION_LINES` lines or more in `text`. */
function longFunctions(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.end).line;
      const lines = last - first + 1;
      const name = (node as ts.FunctionLikeDeclaration).name?.getText(source) ?? '(anonymous)';
      if (lines >= MAX_FUNCTION_LINES) found.push(`${file}:${first + 1} ${name} (${lines} lines)`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('function size', () => {
  it(`no hand-written function is ${MAX_FUNCTION_LINES} lines or longer`, () => {
    const long = result.modules
      .filter((m) => /\.ts$/.test(m.source) && !m.source.endsWith('.test.ts'))
      .flatMap((m) => longFunctions(m.source, readFileSync(join(root, m.source), 'utf8')));
    expect(long).toEqual([]);
  });

  it('the size check has teeth', () => {
    const body = Array.from({ length: MAX_FUNCTION_LINES }, (_, i) => `  const x${i} = ${i};`);
    const text = `function big(): void {\n${body.join('\n')}\n}\nconst small = () => 1;\n`;
    expect(longFunctions('big.ts', text)).toEqual([
      `big.ts:1 big (${MAX_FUNCTION_LINES + 2} lines)`,
    ]);
  });
});
