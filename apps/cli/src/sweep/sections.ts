/** A sweep's report sections (the aggregation itself is `@advrec/sweep`'s). */
import { headlineTestMetric } from '@advrec/sweep';
import type { AxisValue, ConfigurationSummary, Spread, SweepAggregate } from '@advrec/sweep';
import type { HeatMap, ReportSection } from '../run-folder/report.js';

function pointLabel(point: Readonly<Record<string, AxisValue>>): string {
  const parts = Object.entries(point).map(([k, v]) => `${k}=${String(v)}`);
  return parts.length > 0 ? parts.join(', ') : '(base config)';
}

function meanStd(s: Spread | undefined): string {
  if (!s) return 'n/a';
  return s.n > 1 ? `${s.mean.toFixed(4)} ± ${s.std.toFixed(4)}` : s.mean.toFixed(4);
}

/**
 * The report sections of a sweep: the configurations ranked by validation (mean ± std over
 * seeds) with their test metrics, heat maps of validation and test over the first two axes
 * (the other axes held at the best configuration's values), and every run.
 */
export function sweepSections(aggregate: SweepAggregate): ReportSection[] {
  const sections: ReportSection[] = [];
  const testKey = headlineTestMetric(aggregate);
  const seeds = aggregate.seeds.length;
  const spreadNote = seeds > 1 ? ` (mean ± standard deviation over ${seeds} seeds)` : '';
  const ranked = [...aggregate.configurations].sort(
    (a, b) => b.validation.mean - a.validation.mean,
  );
  const testKeys = Object.keys(aggregate.configurations[0]?.test ?? {});
  if (aggregate.best) {
    sections.push({
      kind: 'text',
      title: 'Best configuration (chosen on validation only)',
      text: `${pointLabel(aggregate.best.point)}: validation ${aggregate.metric} ${meanStd(aggregate.best.validation)}${testKey ? `, test ${testKey} ${meanStd(aggregate.best.test[testKey])}` : ''}. The test metrics are reported, never used to choose.`,
    });
  }
  sections.push({
    kind: 'table',
    title: 'Configurations ranked by validation',
    caption: `Validation ${aggregate.metric} of each run's final model${spreadNote}; test metrics of the same models.`,
    columns: [
      ...aggregate.axes.map((a) => a.name),
      'runs',
      `validation ${aggregate.metric}`,
      ...testKeys.map((k) => `test ${k}`),
    ],
    rows: ranked.map((c) => [
      ...aggregate.axes.map((a) => String(c.point[a.name])),
      c.runs.length,
      meanStd(c.validation),
      ...testKeys.map((k) => meanStd(c.test[k])),
    ]),
  });
  const attacks = Object.keys(aggregate.configurations[0]?.robustness ?? {});
  if (testKey && attacks.length > 0)
    sections.push({
      kind: 'table',
      title: `Robustness: change of test ${testKey} under attack`,
      caption: `Relative change of each configuration's test ${testKey} under each perturbation of the runs' robustness sweep (adversary@epsilon)${spreadNote}. A robust configuration loses little.`,
      columns: [...aggregate.axes.map((a) => a.name), ...attacks],
      rows: ranked.map((c) => [
        ...aggregate.axes.map((a) => String(c.point[a.name])),
        ...attacks.map((a) => {
          const s = c.robustness[a]?.[testKey];
          if (!s) return 'n/a';
          const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
          return s.n > 1 ? `${pct(s.mean)} ± ${pct(s.std)}` : pct(s.mean);
        }),
      ]),
    });
  sections.push(...gridSections(aggregate, testKey));
  sections.push(runsSection(aggregate, testKey));
  return sections;
}

/** Heat maps of validation and test over the first two axes (the others held at the best's values). */
function heatMapSections(aggregate: SweepAggregate, testKey: string | null): ReportSection[] {
  const sections: ReportSection[] = [];
  const [yAxis, xAxis] = aggregate.axes as [
    SweepAggregate['axes'][number],
    SweepAggregate['axes'][number],
  ];
  const fixed = aggregate.axes.slice(2);
  const held = fixed.map((a) => `${a.name}=${String(aggregate.best!.point[a.name])}`).join(', ');
  const cellOf = (y: AxisValue, x: AxisValue): ConfigurationSummary | undefined =>
    aggregate.configurations.find(
      (c) =>
        c.point[yAxis.name] === y &&
        c.point[xAxis.name] === x &&
        fixed.every((a) => c.point[a.name] === aggregate.best!.point[a.name]),
    );
  const heat = (value: (c: ConfigurationSummary) => number | undefined, label: string): HeatMap => {
    let highlight: [number, number] | undefined;
    const cells = yAxis.values.map((y, yi) =>
      xAxis.values.map((x, xi) => {
        const c = cellOf(y, x);
        if (c === aggregate.best) highlight = [yi, xi];
        return c ? (value(c) ?? null) : null;
      }),
    );
    return {
      xLabel: xAxis.name,
      yLabel: yAxis.name,
      xValues: xAxis.values.map(String),
      yValues: yAxis.values.map(String),
      cells,
      valueLabel: label,
      ...(highlight ? { highlight } : {}),
    };
  };
  const caption = `Mean over seeds${held ? `; ${held} (the best configuration's)` : ''}. Outlined: the best on validation.`;
  sections.push({
    kind: 'heatmap',
    id: 'sweep-validation',
    title: `Validation ${aggregate.metric}: ${yAxis.name} x ${xAxis.name}`,
    caption,
    map: heat((c) => c.validation.mean, `validation ${aggregate.metric}`),
  });
  if (testKey)
    sections.push({
      kind: 'heatmap',
      id: 'sweep-test',
      title: `Test ${testKey}: ${yAxis.name} x ${xAxis.name}`,
      caption,
      map: heat((c) => c.test[testKey]?.mean, `test ${testKey}`),
    });
  return sections;
}

/** Heat maps over the first two axes, or a plot over a single numeric axis. */
function gridSections(aggregate: SweepAggregate, testKey: string | null): ReportSection[] {
  const sections: ReportSection[] = [];
  if (aggregate.axes.length >= 2 && aggregate.best) {
    sections.push(...heatMapSections(aggregate, testKey));
    return sections;
  }
  if (aggregate.axes.length === 1) {
    const axis = aggregate.axes[0]!;
    if (axis.values.every((v) => typeof v === 'number'))
      sections.push({
        kind: 'plot',
        id: 'sweep-validation',
        title: `Validation ${aggregate.metric} over ${axis.name}`,
        plot: {
          xLabel: axis.name,
          yLabel: aggregate.metric,
          series: [
            {
              name: `validation ${aggregate.metric}`,
              points: aggregate.configurations.map(
                (c) => [c.point[axis.name] as number, c.validation.mean] as const,
              ),
            },
            ...(testKey
              ? [
                  {
                    name: `test ${testKey}`,
                    dashed: true,
                    points: aggregate.configurations.map(
                      (c) => [c.point[axis.name] as number, c.test[testKey]?.mean ?? 0] as const,
                    ),
                  },
                ]
              : []),
          ],
        },
      });
  }
  return sections;
}

/** Every run of the grid, failed ones included. */
function runsSection(aggregate: SweepAggregate, testKey: string | null): ReportSection {
  return {
    kind: 'table',
    title: 'Runs',
    caption:
      'Every run of the grid: its folder is runs/<run>/ (an ordinary advrec train run folder).',
    columns: [
      'run',
      'seed',
      `validation ${aggregate.metric}`,
      'at epoch',
      ...(testKey ? [`test ${testKey}`] : []),
    ],
    rows: [
      ...aggregate.runs.map((r) => [
        r.id,
        r.seed === null ? '-' : r.seed,
        r.validation,
        r.validationEpoch,
        ...(testKey ? [r.test[testKey] ?? 'n/a'] : []),
      ]),
      ...aggregate.missing.map((id) => [id, '-', 'failed', '-', ...(testKey ? ['-'] : [])]),
    ],
  };
}
