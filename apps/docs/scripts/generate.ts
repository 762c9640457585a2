/**
 * Generates the docs pages that come from the code and the measurements, so they cannot
 * drift from them:
 * - reference/cli.md from the CLI's own option definitions (`describeCli`),
 * - reference/config.md from the run-config JSON schema (itself generated from the types),
 * - api/ from each package's TSDoc (TypeDoc + typedoc-plugin-markdown),
 * - results/index.md from bench/results/*.json (tables and SVG plots, each with its protocol,
 *   data set, split, seeds, hardware, date and commit).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeCli, pValue, renderSvg, runConfigSchema } from 'advrec';
import type { LinePlot } from 'advrec';
import { Application } from 'typedoc';
import { PACKAGES } from './packages.js';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..');
const repo = join(docs, '..', '..');

/** Text safe inside Markdown table cells and outside code (Vue would read `{{` and `<`). */
function md(text: string): string {
  return text
    .replace(/\|/g, '\\|')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\{\{/g, '&#123;&#123;')
    .replace(/\n/g, ' ');
}

function code(text: string): string {
  return `<code>${text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\|/g, '&#124;').replace(/\{/g, '&#123;')}</code>`;
}

async function write(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

async function cliReference(): Promise<void> {
  const lines = [
    '# CLI reference',
    '',
    'Generated from the option definitions of the `advrec` binary (`describeCli()` in the `advrec` package); `advrec <command> --help` prints the same.',
    '',
  ];
  for (const command of describeCli()) {
    lines.push(`## \`${command.name}\``, '', md(command.description), '');
    if (command.arguments.length > 0) {
      lines.push('| argument | required | description |', '| --- | --- | --- |');
      for (const a of command.arguments)
        lines.push(
          `| ${code(`<${a.name}>`)} | ${a.required ? 'yes' : 'no'} | ${md(a.description)} |`,
        );
      lines.push('');
    }
    if (command.options.length > 0) {
      lines.push('| option | description | default | choices |', '| --- | --- | --- | --- |');
      for (const o of command.options)
        lines.push(
          `| ${code(o.flags)} | ${md(o.description)} | ${o.defaultValue === undefined ? '' : code(JSON.stringify(o.defaultValue))} | ${o.choices ? o.choices.map(code).join(' ') : ''} |`,
        );
      lines.push('');
    }
  }
  lines.push(
    '## Exit codes',
    '',
    '| code | meaning |',
    '| --- | --- |',
    '| 0 | success |',
    '| 1 | unexpected internal error (a bug; the stack is printed) |',
    '| 2 | usage or config error: bad flag, invalid config field, unknown model / adversary / data set name |',
    '| 3 | data error: missing or malformed file (named with its line), unknown id, mismatched features |',
    '| 4 | download error: network, SHA-256 mismatch, unsafe archive member |',
    '| 130 | interrupted (Ctrl-C); training saves `checkpoints/last.ckpt` after the current epoch |',
    '',
  );
  await write(join(docs, 'reference', 'cli.md'), `${lines.join('\n')}\n`);
}

interface SchemaNode {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  items?: SchemaNode;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  additionalProperties?: boolean | SchemaNode;
  anyOf?: SchemaNode[];
}

async function configReference(): Promise<void> {
  const schema = runConfigSchema as { definitions: Record<string, SchemaNode> };
  const definitions = schema.definitions;
  const typeOf = (node: SchemaNode): string => {
    if (node.$ref) return node.$ref.split('/').at(-1)!;
    if (node.enum) return node.enum.map((v) => JSON.stringify(v)).join(' \\| ');
    if (node.type === 'array' && node.items) return `${typeOf(node.items)}[]`;
    if (node.anyOf) return node.anyOf.map(typeOf).join(' \\| ');
    if (
      node.type === 'object' &&
      node.additionalProperties &&
      typeof node.additionalProperties === 'object'
    )
      return `map of ${typeOf(node.additionalProperties)}`;
    return Array.isArray(node.type) ? node.type.join(' \\| ') : (node.type ?? 'any');
  };
  const lines = [
    '# Config reference',
    '',
    'Generated from `apps/cli/schema/run-config.schema.json` (exported as `advrec/run-config.schema.json`), which is itself generated from the `RunConfig` TypeScript types. `advrec train -c run.yaml` validates against it and reports every problem with its field path; `--set path=value` overrides any field.',
    '',
    'Sections: ' +
      Object.keys(definitions)
        .map((name) => `[${name}](#${name.toLowerCase()})`)
        .join(', ') +
      '.',
    '',
  ];
  for (const [name, node] of Object.entries(definitions)) {
    lines.push(`## ${name}`, '', node.description ? md(node.description) : '', '');
    if (node.anyOf && !node.properties) {
      // A union of sections (RunConfig: a pairwise or a sequential run).
      const choices = node.anyOf.map((choice) => {
        const type = typeOf(choice);
        return choice.$ref ? `[${type}](#${type.toLowerCase()})` : md(type);
      });
      lines.push(`One of: ${choices.join(', ')}.`, '');
      continue;
    }
    lines.push(
      '| field | type | required | default | bounds | description |',
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const [field, child] of Object.entries(node.properties ?? {})) {
      const bounds = [
        child.minimum !== undefined ? `>= ${child.minimum}` : '',
        child.exclusiveMinimum !== undefined ? `> ${child.exclusiveMinimum}` : '',
        child.maximum !== undefined ? `<= ${child.maximum}` : '',
      ]
        .filter((b) => b !== '')
        .join(', ');
      const type = typeOf(child);
      const linked = child.$ref
        ? `[${type}](#${type.toLowerCase()})`
        : md(type).replace(/\\\\\|/g, '\\|');
      lines.push(
        `| \`${field}\` | ${linked} | ${node.required?.includes(field) ? 'yes' : ''} | ${child.default === undefined ? '' : code(JSON.stringify(child.default))} | ${md(bounds)} | ${md(child.description ?? '')} |`,
      );
    }
    lines.push('');
  }
  await write(join(docs, 'reference', 'config.md'), `${lines.join('\n')}\n`);
}

async function apiReference(): Promise<void> {
  const out = join(docs, 'api');
  await rm(out, { recursive: true, force: true });
  const app = await Application.bootstrapWithPlugins({
    entryPoints: PACKAGES.map((name) => join(repo, 'packages', name, 'src', 'index.ts')),
    tsconfig: join(docs, 'tsconfig.typedoc.json'),
    plugin: ['typedoc-plugin-markdown'],
    out,
    readme: 'none',
    excludePrivate: true,
    excludeInternal: true,
    excludeExternals: true,
    hideGenerator: true,
    disableSources: true,
    logLevel: 'Warn',
    validation: { notExported: false, invalidLink: false, rewrittenLink: false },
    // typedoc-plugin-markdown
    outputFileStrategy: 'modules',
    entryFileName: 'index',
    hidePageHeader: true,
    hideBreadcrumbs: true,
    sanitizeComments: true,
    useCodeBlocks: true,
    parametersFormat: 'table',
    interfacePropertiesFormat: 'table',
  } as Parameters<typeof Application.bootstrapWithPlugins>[0]);
  const project = await app.convert();
  if (!project) throw new Error('TypeDoc could not convert the packages (see the messages above)');
  await app.generateOutputs(project);
  // One page per package, named after it: api/<name>/src.md -> api/<name>.md, links rewritten.
  const fix = (text: string): string =>
    text
      .replace(/\.\.\/([a-z]+)\/src\.md/g, '$1.md')
      .replace(/\(([a-z]+)\/src\.md/g, '($1.md')
      .replace(/\[([a-z]+)\/src\]/g, '[@advrec/$1]');
  for (const name of PACKAGES) {
    const from = join(out, name, 'src.md');
    if (!existsSync(from)) throw new Error(`TypeDoc wrote no page for ${name} (${from})`);
    const text = fix(await readFile(from, 'utf8')).replace(
      /^# [a-z]+\/src\n/,
      `# @advrec/${name}\n`,
    );
    await writeFile(join(out, `${name}.md`), text);
    await rm(join(out, name), { recursive: true, force: true });
  }
  const index = join(out, 'index.md');
  const text = fix(await readFile(index, 'utf8'));
  await writeFile(
    index,
    `# API reference\n\nGenerated by TypeDoc from the TSDoc of each package's \`src/index.ts\` (what the package exports is its public API). The command line's options are in the [CLI reference](../reference/cli.md).\n\n${text.replace(/^# .*\n/, '')}`,
  );
}

// ---------------------------------------------------------------------------------------
// Results

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface BenchFile {
  benchmark: string;
  date: string;
  seconds: number;
  commit: string;
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; platform: string };
  results: { [key: string]: Json };
}

function fmt(value: Json): string {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value.toLocaleString('en-US');
    if (Math.abs(value) < 1e-3 && value !== 0) return value.toExponential(2);
    return value.toFixed(4);
  }
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (value === null) return 'n/a';
  return md(String(value));
}

const isObject = (v: Json | undefined): v is { [key: string]: Json } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A results key path as words: `protocol.config.embeddingSize` -> `protocol › config ›
 * embedding size` (acronyms and metric names such as `ndcg@20` kept).
 */
function humanKey(path: string): string {
  return path
    .split('.')
    .map((segment) =>
      segment
        .replace(/(KiB|MiB|GiB)/g, (unit) => `§${unit.toLowerCase()}`)
        .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
        .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
        .replace(/\b([A-Z])([a-z])/g, (_m, a: string, b: string) => a.toLowerCase() + b)
        .replace(
          /§(kib|mib|gib)/g,
          (_m, unit: string) => ` ${unit[0]!.toUpperCase()}i${unit[2]!.toUpperCase()}`,
        ),
    )
    .join(' › ');
}

/** Scalars of a results object as `path | value` rows (long arrays summarised). */
function scalarRows(value: Json, path: string, rows: [string, string][], depth = 0): void {
  if (depth > 5) return;
  if (isObject(value)) {
    for (const [key, child] of Object.entries(value)) {
      if (['points', 'validationCurve', 'curve', 'perEpoch', 'loadSecondsRuns'].includes(key))
        continue;
      scalarRows(child, path ? `${path}.${key}` : key, rows, depth + 1);
    }
  } else if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== 'object' || v === null))
      rows.push([
        path,
        value.length <= 8
          ? value.map(fmt).join(', ')
          : `${value.length} values, median ${fmt([...(value as number[])].sort((a, b) => a - b)[value.length >> 1]!)}`,
      ]);
  } else rows.push([path, fmt(value)]);
}

interface RobustnessNode {
  clean: Record<string, number>;
  points: {
    adversary: string;
    epsilon: number;
    metrics: Record<string, number>;
    relativeChange: Record<string, number>;
  }[];
  surfaces?: string[];
  split?: string;
}

function findAll<T>(
  value: Json,
  test: (node: { [key: string]: Json }) => boolean,
  path = '',
): [string, T][] {
  const found: [string, T][] = [];
  if (isObject(value)) {
    if (test(value)) found.push([path, value as unknown as T]);
    else
      for (const [key, child] of Object.entries(value))
        found.push(...findAll<T>(child, test, path ? `${path}.${key}` : key));
  }
  return found;
}

function svgBlock(plot: LinePlot, title: string): string {
  // Inline SVG in Markdown: one line per element, no blank lines (VitePress keeps it as HTML).
  return `<figure class="result-plot">\n${renderSvg(plot, title).trim()}\n</figure>`;
}

function resultsSection(file: string, bench: BenchFile): string {
  const r = bench.results;
  const out: string[] = [];
  out.push(`## ${bench.benchmark}`, '');
  out.push(
    `Source: \`bench/results/${file}\`, written by \`pnpm bench ${bench.benchmark}\` on ${bench.date.slice(0, 10)} (commit \`${bench.commit}\`, ${Math.round(bench.seconds)} s) on ${md(bench.machine.cpu)}, ${bench.machine.cores} cores, ${bench.machine.memoryGiB} GiB, Node ${bench.machine.node} (${bench.machine.platform}).`,
    '',
  );
  // Data set, protocol, split and seeds: whatever the benchmark recorded about them.
  const protocolKeys = ['dataset', 'protocol', 'config', 'published', 'model', 'features'];
  const protocolRows: [string, string][] = [];
  for (const key of protocolKeys) if (r[key] !== undefined) scalarRows(r[key]!, key, protocolRows);
  if (protocolRows.length > 0) {
    out.push('**Protocol, data set, split and seeds**', '', '| | |', '| --- | --- |');
    for (const [k, v] of protocolRows) out.push(`| ${md(humanKey(k))} | ${v} |`);
    out.push('');
  }
  // Model comparisons: objects whose values are metric maps (`hr@20`, `ndcg@10`, ...).
  const metricMaps = findAll<Record<string, number>>(
    r,
    (node) =>
      Object.keys(node).length > 0 &&
      Object.keys(node).every((k) => /^[a-z]+@\d+$/.test(k)) &&
      Object.values(node).every((v) => typeof v === 'number'),
  );
  const tables = new Map<string, [string, Record<string, number>][]>();
  for (const [path, metrics] of metricMaps) {
    if (/robustness|points|clean|coldStartCases|warmCases/.test(path)) continue;
    const key = Object.keys(metrics).join(',');
    const list = tables.get(key) ?? [];
    list.push([path, metrics]);
    tables.set(key, list);
  }
  for (const [key, rows] of tables) {
    const metrics = key.split(',');
    out.push(
      `**Test metrics** (${metrics.join(', ')})`,
      '',
      `| result | ${metrics.join(' | ')} |`,
      `| --- | ${metrics.map(() => '---:').join(' | ')} |`,
    );
    for (const [path, values] of rows)
      out.push(`| ${md(humanKey(path))} | ${metrics.map((m) => fmt(values[m]!)).join(' | ')} |`);
    out.push('');
  }
  // Significance: paired t-tests recorded by the benchmark.
  const tests = findAll<{ t: number; pValue: number; n?: number }>(
    r,
    (node) => typeof node.pValue === 'number' && typeof node.t === 'number',
  );
  if (tests.length > 0) {
    out.push(
      '**Paired t-tests** (per-user metric differences)',
      '',
      '| comparison | t | p | users |',
      '| --- | ---: | ---: | ---: |',
    );
    for (const [path, t] of tests)
      out.push(
        `| ${md(humanKey(path))} | ${t.t.toFixed(2)} | ${pValue(t.pValue)} | ${t.n === undefined ? '' : t.n.toLocaleString('en-US')} |`,
      );
    out.push('');
  }
  // Robustness sweeps: drop tables (APR Table 2 / AMR Table 3) and curves (Figure 1 / 4).
  const sweeps = findAll<RobustnessNode>(
    r,
    (node) => Array.isArray(node.points) && isObject(node.clean),
  );
  if (sweeps.length > 0) {
    const metric =
      Object.keys(sweeps[0]![1].clean).find((k) => k.startsWith('ndcg@')) ??
      Object.keys(sweeps[0]![1].clean)[0]!;
    const epsilons = [...new Set(sweeps.flatMap(([, s]) => s.points.map((p) => p.epsilon)))].sort(
      (a, b) => a - b,
    );
    out.push(
      `**Robustness**: relative change of ${metric} under perturbation of norm epsilon per row (surfaces: ${sweeps[0]![1].surfaces?.join(', ') ?? 'n/a'}; split ${sweeps[0]![1].split ?? 'test'})`,
      '',
      `| model | adversary | clean | ${epsilons.map((e) => `eps ${e}`).join(' | ')} |`,
      `| --- | --- | ---: | ${epsilons.map(() => '---:').join(' | ')} |`,
    );
    const series: LinePlot['series'][number][] = [];
    for (const [path, sweep] of sweeps) {
      for (const adversary of [...new Set(sweep.points.map((p) => p.adversary))]) {
        const points = sweep.points
          .filter((p) => p.adversary === adversary)
          .sort((a, b) => a.epsilon - b.epsilon);
        out.push(
          `| ${md(humanKey(path))} | ${adversary} | ${fmt(sweep.clean[metric]!)} | ${epsilons
            .map((e) => {
              const c = points.find((p) => p.epsilon === e)?.relativeChange[metric];
              return c === undefined ? '' : `${c >= 0 ? '+' : ''}${(100 * c).toFixed(1)}%`;
            })
            .join(' | ')} |`,
        );
        series.push({
          name: `${humanKey(path.replace(/^robustness\./, ''))}, ${adversary}`,
          dashed: adversary === 'random',
          points: [
            [0, 0] as const,
            ...points.map((p) => [p.epsilon, p.relativeChange[metric]!] as const),
          ],
        });
      }
    }
    out.push(
      '',
      svgBlock(
        { xLabel: 'epsilon', yLabel: `relative change of ${metric}`, yPercent: true, series },
        `${bench.benchmark}: ${metric} under perturbation`,
      ),
      '',
    );
  }
  // Validation curves (the papers' Figures 3-5).
  const curves = findAll<{
    validationCurve?: { epoch: number; value: number }[];
    curve?: { epoch: number; value: number }[];
  }>(r, (node) => Array.isArray(node.validationCurve) || Array.isArray(node.curve));
  if (curves.length > 0) {
    const series = curves.map(([path, node]) => ({
      name: path.replace(/\.training$/, '').replace(/^training\./, ''),
      points: (node.validationCurve ?? node.curve ?? []).map((p) => [p.epoch, p.value] as const),
    }));
    out.push(
      svgBlock(
        { xLabel: 'epoch', yLabel: 'validation metric', series },
        `${bench.benchmark}: validation curve per epoch`,
      ),
      '',
    );
  }
  // Everything else the benchmark measured.
  const rows: [string, string][] = [];
  for (const [key, value] of Object.entries(r))
    if (!protocolKeys.includes(key)) scalarRows(value, key, rows);
  if (rows.length > 0) {
    out.push(
      '<details><summary>All recorded figures</summary>',
      '',
      '| figure | value |',
      '| --- | --- |',
    );
    for (const [k, v] of rows.slice(0, 400)) out.push(`| ${md(humanKey(k))} | ${v} |`);
    out.push('', '</details>', '');
  }
  return out.join('\n');
}

async function results(): Promise<void> {
  const dir = join(repo, 'bench', 'results');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const order = [
    'time-to-quality.json',
    'quality-gowalla.json',
    'quality-ml100k.json',
    'quality-ml1m-posters.json',
    'quality-amr-recipe.json',
    'vbpr-diagnosis.json',
    'train.json',
    'eval.json',
    'features.json',
    'data.json',
  ];
  files.sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
  const sections: string[] = [];
  for (const file of files)
    sections.push(
      resultsSection(file, JSON.parse(await readFile(join(dir, file), 'utf8')) as BenchFile),
    );
  const page = [
    '# Reproduced results',
    '',
    "Every number on this page is read from `bench/results/*.json` when the site is built: what `pnpm bench <name>` measured on this project's machines (2 cores, shared and noisy), with the protocol, data set, split, seeds, hardware, date and commit of the run beside it. Full-ranking and sampled-negative numbers are not comparable with each other (see [Evaluation protocols](../concepts/evaluation.md)).",
    '',
    'Contents: ' +
      files.map((f) => `[${f.replace(/\.json$/, '')}](#${f.replace(/\.json$/, '')})`).join(', ') +
      '.',
    '',
    ...sections,
  ];
  await write(join(docs, 'results', 'index.md'), `${page.join('\n')}\n`);
}

await Promise.all([cliReference(), configReference(), results()]);
await apiReference();
console.log('generated reference/cli.md, reference/config.md, api/, results/index.md');
