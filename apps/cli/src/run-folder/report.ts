import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@advrec/data';

/** A line series of a plot. */
export interface PlotSeries {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
}

/** A line plot (training curves, robustness curves), drawn as SVG. */
export interface LinePlot {
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly PlotSeries[];
  /** Show y values as percentages. */
  readonly yPercent?: boolean;
  /** Vertical lines at an x value, labelled (e.g. where adversarial training starts). */
  readonly markers?: readonly { readonly x: number; readonly label: string }[];
}

/**
 * A heat map over two axes of a grid (a sweep's mean validation metric per epsilon and
 * lambda), drawn as SVG: one cell per pair, darker is higher, the value printed in the cell.
 */
export interface HeatMap {
  readonly xLabel: string;
  readonly yLabel: string;
  readonly xValues: readonly string[];
  readonly yValues: readonly string[];
  /** `cells[y][x]`; null where the grid has no result (a failed run). */
  readonly cells: readonly (readonly (number | null)[])[];
  /** What the cells hold, e.g. `validation ndcg@20 (mean over 2 seeds)`. */
  readonly valueLabel: string;
  /** The cell to outline (the best configuration), as [y, x]. */
  readonly highlight?: readonly [number, number];
}

/** A block of a report. */
export type ReportSection =
  | { readonly kind: 'text'; readonly title?: string; readonly text: string }
  | {
      readonly kind: 'table';
      readonly title: string;
      readonly caption?: string;
      readonly columns: readonly string[];
      readonly rows: readonly (readonly (string | number)[])[];
    }
  | {
      readonly kind: 'plot';
      readonly id: string;
      readonly title: string;
      readonly caption?: string;
      readonly plot: LinePlot;
    }
  | {
      readonly kind: 'heatmap';
      readonly id: string;
      readonly title: string;
      readonly caption?: string;
      readonly map: HeatMap;
    };

/** A run's human report: Markdown and a self-contained HTML page with SVG plots. */
export interface Report {
  readonly title: string;
  /** Key facts: data set, fingerprint, protocol, command, date, machine. */
  readonly facts: readonly (readonly [string, string])[];
  readonly sections: readonly ReportSection[];
}

const COLORS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
];

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    return niceTicks(min - pad, max + pad, count);
  }
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let t = Math.floor(min / step) * step; t <= max + step * 1e-9; t += step)
    ticks.push(Number(t.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max)
    ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

function formatTick(value: number, percent: boolean): string {
  if (percent) return `${(value * 100).toFixed(Math.abs(value) < 0.1 && value !== 0 ? 1 : 0)}%`;
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1000 || abs < 0.001) return value.toExponential(1);
  return String(Number(value.toPrecision(4)));
}

/** Draws a line plot as a standalone SVG document (axes, ticks, legend). */
export function renderSvg(plot: LinePlot, title = ''): string {
  const longest = Math.max(0, ...plot.series.map((s) => s.name.length));
  const legendWidth = Math.min(260, 40 + longest * 6.6);
  const width = 600 + legendWidth;
  const height = Math.max(360, 80 + plot.series.length * 16);
  const margin = { left: 64, right: 16, top: title ? 32 : 12, bottom: 48 };
  const points = plot.series
    .flatMap((s) => s.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const xTicks = niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1);
  const yTicks = niceTicks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1);
  const x0 = xTicks[0]!;
  const x1 = xTicks[xTicks.length - 1]!;
  const y0 = yTicks[0]!;
  const y1 = yTicks[yTicks.length - 1]!;
  const plotW = width - margin.left - margin.right - legendWidth;
  const plotH = height - margin.top - margin.bottom;
  const sx = (x: number): number => margin.left + ((x - x0) / (x1 - x0 || 1)) * plotW;
  const sy = (y: number): number => margin.top + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(title || plot.yLabel)}" font-family="system-ui, sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  if (title)
    parts.push(
      `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(title)}</text>`,
    );
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    parts.push(
      `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
    );
    parts.push(
      `<text x="${margin.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatTick(t, plot.yPercent ?? false)}</text>`,
    );
  }
  for (const t of xTicks) {
    const x = sx(t).toFixed(1);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${margin.top + plotH}" y2="${margin.top + plotH + 4}" stroke="#333"/>`,
    );
    parts.push(
      `<text x="${x}" y="${margin.top + plotH + 18}" text-anchor="middle">${formatTick(t, false)}</text>`,
    );
  }
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
  );
  parts.push(
    `<text x="${margin.left + plotW / 2}" y="${height - 8}" text-anchor="middle">${escapeXml(plot.xLabel)}</text>`,
  );
  parts.push(
    `<text transform="translate(14 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(plot.yLabel)}</text>`,
  );
  (plot.markers ?? []).forEach((marker, index) => {
    if (!Number.isFinite(marker.x)) return;
    const x = sx(marker.x).toFixed(1);
    parts.push(
      `<line class="marker" x1="${x}" x2="${x}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#555" stroke-dasharray="2 3"/>`,
    );
    parts.push(
      `<text x="${(Number(x) + 4).toFixed(1)}" y="${margin.top + 12 + index * 14}" fill="#555">${escapeXml(marker.label)}</text>`,
    );
  });
  plot.series.forEach((series, index) => {
    const color = COLORS[index % COLORS.length]!;
    const valid = series.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (valid.length === 0) return;
    const d = valid
      .map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`)
      .join(' ');
    parts.push(
      `<path class="series" data-series="${escapeXml(series.name)}" d="${d}" fill="none" stroke="${color}" stroke-width="2"${series.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    if (valid.length <= 30)
      for (const [x, y] of valid)
        parts.push(
          `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"/>`,
        );
    const ly = margin.top + 8 + index * 16;
    const lx = margin.left + plotW + 12;
    parts.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${series.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    parts.push(
      `<text x="${lx + 24}" y="${ly}" dominant-baseline="middle">${escapeXml(series.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function cell(value: string | number): string {
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'n/a';
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) < 1e-3 && value !== 0 ? value.toExponential(2) : value.toFixed(4);
  }
  return value;
}

/** Draws a heat map as a standalone SVG document (labelled cells, a colour scale). */
export function renderHeatmapSvg(map: HeatMap, title = ''): string {
  const cellWidth = Math.max(64, 8 * Math.max(...map.xValues.map((v) => v.length)) + 16);
  const cellHeight = 36;
  const left = Math.max(70, 7 * Math.max(...map.yValues.map((v) => v.length)) + 30);
  const top = title ? 48 : 24;
  const legend = `${map.valueLabel}; range 0.00000 to 0.00000${map.highlight ? '; outlined: best on validation' : ''}`;
  // Wide enough for the grid, the title and the legend line.
  const width = Math.ceil(
    Math.max(
      left + cellWidth * map.xValues.length + 20,
      title.length * 8.5 + 40,
      left + legend.length * 6.6 + 20,
    ),
  );
  const height = top + cellHeight * map.yValues.length + 70;
  const values = map.cells.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  const min = values.length > 0 ? Math.min(...values) : 0;
  const max = values.length > 0 ? Math.max(...values) : 1;
  const shade = (v: number): string => {
    // White to the report's blue (#1f77b4), linear in the value.
    const t = max > min ? (v - min) / (max - min) : 1;
    const mix = (from: number, to: number): number => Math.round(from + (to - from) * t);
    return `rgb(${mix(247, 31)},${mix(251, 119)},${mix(255, 180)})`;
  };
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  if (title)
    parts.push(
      `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(title)}</text>`,
    );
  map.yValues.forEach((label, y) => {
    parts.push(
      `<text x="${left - 8}" y="${top + y * cellHeight + cellHeight / 2 + 4}" text-anchor="end">${escapeXml(label)}</text>`,
    );
    map.xValues.forEach((_, x) => {
      const v = map.cells[y]?.[x] ?? null;
      const px = left + x * cellWidth;
      const py = top + y * cellHeight;
      const fill = v === null || !Number.isFinite(v) ? '#eeeeee' : shade(v);
      parts.push(
        `<rect x="${px}" y="${py}" width="${cellWidth}" height="${cellHeight}" fill="${fill}" stroke="white"/>`,
      );
      const dark = v !== null && max > min && (v - min) / (max - min) > 0.55;
      parts.push(
        `<text x="${px + cellWidth / 2}" y="${py + cellHeight / 2 + 4}" text-anchor="middle" fill="${dark ? 'white' : '#222'}">${v === null || !Number.isFinite(v) ? 'n/a' : escapeXml(formatTick(v, false))}</text>`,
      );
    });
  });
  if (map.highlight) {
    const [y, x] = map.highlight;
    parts.push(
      `<rect x="${left + x * cellWidth + 1.5}" y="${top + y * cellHeight + 1.5}" width="${cellWidth - 3}" height="${cellHeight - 3}" fill="none" stroke="#d62728" stroke-width="3"/>`,
    );
  }
  const bottom = top + cellHeight * map.yValues.length;
  map.xValues.forEach((label, x) =>
    parts.push(
      `<text x="${left + x * cellWidth + cellWidth / 2}" y="${bottom + 16}" text-anchor="middle">${escapeXml(label)}</text>`,
    ),
  );
  parts.push(
    `<text x="${left + (cellWidth * map.xValues.length) / 2}" y="${bottom + 36}" text-anchor="middle" font-weight="600">${escapeXml(map.xLabel)}</text>`,
    `<text x="14" y="${top + (cellHeight * map.yValues.length) / 2}" text-anchor="middle" font-weight="600" transform="rotate(-90 14 ${top + (cellHeight * map.yValues.length) / 2})">${escapeXml(map.yLabel)}</text>`,
    `<text x="${left}" y="${bottom + 58}" fill="#555">${escapeXml(map.valueLabel)}; range ${escapeXml(formatTick(min, false))} to ${escapeXml(formatTick(max, false))}${map.highlight ? '; outlined: best on validation' : ''}</text>`,
    '</svg>',
  );
  return parts.join('\n');
}

/** The report as Markdown; plots are linked as `plots/<id>.svg`. */
export function renderMarkdown(report: Report): string {
  const lines: string[] = [`# ${report.title}`, ''];
  for (const [key, value] of report.facts) lines.push(`- **${key}**: ${value}`);
  for (const section of report.sections) {
    lines.push('');
    if (section.kind === 'text') {
      if (section.title) lines.push(`## ${section.title}`, '');
      lines.push(section.text);
    } else if (section.kind === 'table') {
      lines.push(`## ${section.title}`, '');
      if (section.caption) lines.push(section.caption, '');
      lines.push(`| ${section.columns.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
      lines.push(`| ${section.columns.map(() => '---').join(' | ')} |`);
      for (const row of section.rows)
        lines.push(`| ${row.map((v) => cell(v).replace(/\|/g, '\\|')).join(' | ')} |`);
    } else {
      lines.push(`## ${section.title}`, '');
      if (section.caption) lines.push(section.caption, '');
      lines.push(`![${section.title}](plots/${section.id}.svg)`);
      if (section.kind === 'heatmap') {
        // The numbers too, for readers without images.
        const map = section.map;
        lines.push('', `| ${map.yLabel} \\ ${map.xLabel} | ${map.xValues.join(' | ')} |`);
        lines.push(`| --- | ${map.xValues.map(() => '---').join(' | ')} |`);
        map.yValues.forEach((label, y) =>
          lines.push(
            `| ${label} | ${map.xValues
              .map((_, x) => {
                const v = map.cells[y]?.[x] ?? null;
                return v === null ? 'n/a' : cell(v);
              })
              .join(' | ')} |`,
          ),
        );
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The report as one self-contained HTML page (inline CSS and SVG; no scripts, no network). */
export function renderHtml(report: Report): string {
  const body: string[] = [];
  body.push(`<h1>${escapeHtml(report.title)}</h1>`);
  body.push('<dl class="facts">');
  for (const [key, value] of report.facts)
    body.push(`<dt>${escapeHtml(key)}</dt><dd>${escapeHtml(value)}</dd>`);
  body.push('</dl>');
  for (const section of report.sections) {
    body.push('<section>');
    if (section.kind === 'text') {
      if (section.title) body.push(`<h2>${escapeHtml(section.title)}</h2>`);
      for (const paragraph of section.text.split(/\n\n+/))
        body.push(`<p>${escapeHtml(paragraph)}</p>`);
    } else if (section.kind === 'table') {
      body.push(`<h2>${escapeHtml(section.title)}</h2>`);
      if (section.caption) body.push(`<p class="caption">${escapeHtml(section.caption)}</p>`);
      // Wide tables (a column per metric or epsilon) scroll in their own box.
      body.push('<div class="table-wrap"><table><thead><tr>');
      for (const c of section.columns) body.push(`<th>${escapeHtml(c)}</th>`);
      body.push('</tr></thead><tbody>');
      for (const row of section.rows)
        body.push(
          `<tr>${row.map((v) => `<td${typeof v === 'number' ? ' class="num"' : ''}>${escapeHtml(cell(v))}</td>`).join('')}</tr>`,
        );
      body.push('</tbody></table></div>');
    } else {
      body.push(`<h2>${escapeHtml(section.title)}</h2>`);
      if (section.caption) body.push(`<p class="caption">${escapeHtml(section.caption)}</p>`);
      body.push(
        `<figure id="plot-${escapeHtml(section.id)}">${section.kind === 'heatmap' ? renderHeatmapSvg(section.map) : renderSvg(section.plot)}</figure>`,
      );
    }
    body.push('</section>');
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(report.title)}</title>
<style>
body { font-family: system-ui, -apple-system, sans-serif; max-width: 980px; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; font-size: 0.9rem; }
dt { font-weight: 600; } dd { margin: 0; word-break: break-all; }
div.table-wrap { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
.caption { color: #555; font-size: 0.9rem; }
figure { margin: 0.5rem 0; } svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`;
}

/** Writes `report.md`, `report.html` and `plots/<id>.svg` into a run folder (each atomically). */
export async function writeReport(folder: string, report: Report): Promise<void> {
  await mkdir(join(folder, 'plots'), { recursive: true });
  for (const section of report.sections)
    if (section.kind === 'plot' || section.kind === 'heatmap')
      await writeFileAtomic(join(folder, 'plots', `${section.id}.svg`), () => [
        section.kind === 'heatmap'
          ? renderHeatmapSvg(section.map, section.title)
          : renderSvg(section.plot, section.title),
      ]);
  await writeFileAtomic(join(folder, 'report.md'), () => [renderMarkdown(report)]);
  await writeFileAtomic(join(folder, 'report.html'), () => [renderHtml(report)]);
}
