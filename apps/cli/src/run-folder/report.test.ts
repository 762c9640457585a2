import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pValue } from './context.js';
import { Progress } from '../progress.js';
import { renderHtml, renderMarkdown, renderSvg, writeReport } from './report.js';
import type { Report } from './report.js';

const report: Report = {
  title: 'A <run> & co',
  facts: [['data', 'ml-100k']],
  sections: [
    { kind: 'text', title: 'Notes', text: 'first\n\nsecond' },
    {
      kind: 'table',
      title: 'Results',
      columns: ['model', 'ndcg@10'],
      rows: [
        ['mf|bpr', 0.123456],
        ['pop', Number.NaN],
      ],
    },
    {
      kind: 'plot',
      id: 'curve',
      title: 'Curve',
      plot: {
        xLabel: 'epsilon',
        yLabel: 'ndcg@10',
        series: [
          {
            name: 'fgm <adv>',
            points: [
              [0, 0.3],
              [0.5, 0.2],
              [1, Number.NaN],
              [2, 0.05],
            ],
          },
          {
            name: 'random',
            dashed: true,
            points: [
              [0, 0.3],
              [2, 0.25],
            ],
          },
        ],
      },
    },
  ],
};

describe('reports', () => {
  it('draws one path per series, skips non-finite points and escapes text', () => {
    const section = report.sections[2]!;
    if (section.kind !== 'plot') throw new Error('fixture: the third section is a plot');
    const svg = renderSvg(section.plot, 'T & t');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<path class="series"/g)).toHaveLength(2);
    expect(svg).toContain('fgm &#60;adv&#62;');
    expect(svg).toContain('T &#38; t');
    expect(svg).not.toContain('NaN');
    expect(svg).toContain('stroke-dasharray="6 4"');
    // The fgm path has three finite points: M + 2 L.
    const d = /data-series="fgm &#60;adv&#62;" d="([^"]+)"/.exec(svg)![1]!;
    expect(d.split(/[ML]/).filter((s) => s.trim() !== '')).toHaveLength(3);
  });

  it('draws a plot with a single point or a flat series without dividing by zero', () => {
    const svg = renderSvg({
      xLabel: 'x',
      yLabel: 'y',
      series: [{ name: 'one', points: [[3, 0.5]] }],
    });
    expect(svg).not.toMatch(/NaN|Infinity/);
  });

  it('writes Markdown tables (pipes escaped, NaN as n/a) and a self-contained HTML page', () => {
    const md = renderMarkdown(report);
    expect(md).toContain('| mf\\|bpr | 0.1235 |');
    expect(md).toContain('| pop | n/a |');
    expect(md).toContain('![Curve](plots/curve.svg)');
    const html = renderHtml(report);
    expect(html).toContain('<title>A &#60;run&#62; &#38; co</title>');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    expect(html.match(/<svg /g)).toHaveLength(1);
  });

  it('writes report.md, report.html and plots/<id>.svg', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'advrec-report-'));
    await writeReport(folder, report);
    expect(readdirSync(folder).sort()).toEqual(['plots', 'report.html', 'report.md']);
    expect(readFileSync(join(folder, 'plots', 'curve.svg'), 'utf8')).toContain('<svg');
  });
});

describe('progress', () => {
  const sink = () => {
    const s = { text: '', write: (t: string) => ((s.text += t), true) };
    return s as unknown as NodeJS.WritableStream & { text: string };
  };

  it('redraws one line in place on a TTY', () => {
    const out = sink();
    const bar = new Progress(out, { tty: true }).bar('epochs', 4);
    bar.update(1, 'loss 0.5');
    bar.update(2);
    bar.finish('done');
    expect(out.text).toContain('\r\u001b[2Kepochs ');
    expect(out.text).toContain('1/4 25%');
    expect(out.text.endsWith('4/4 (')).toBe(false);
    expect(out.text.trimEnd().split('\n')).toHaveLength(1);
  });

  it('prints plain lines, at most one per interval or quarter, when not a TTY; nothing when quiet', () => {
    const out = sink();
    const bar = new Progress(out, { tty: false, interval: 60_000 }).bar('users', 100);
    for (let k = 1; k <= 100; k++) bar.update(k);
    bar.finish('ok', 100);
    const lines = out.text.trim().split('\n');
    expect(lines.length).toBeLessThanOrEqual(6);
    expect(lines.at(-1)).toMatch(/^users 100\/100 \(.*\) ok$/);
    expect(out.text).not.toContain('\r');
    const quiet = sink();
    new Progress(quiet, { quiet: true }).bar('x', 1).finish();
    expect(quiet.text).toBe('');
  });
});

describe('p-values as people write them', () => {
  it('two significant digits down to 0.001, then scientific notation', () => {
    expect([0.53, 0.0123, 0.0042, 3.14e-5, 0, Number.NaN].map(pValue)).toEqual([
      '0.53',
      '0.012',
      '0.0042',
      '3.1e-5',
      '< 1e-300',
      'n/a',
    ]);
  });
});
