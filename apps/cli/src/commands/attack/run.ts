import { isSequentialRunFolder } from '../../run-folder/sequential-kind.js';
import { attackModel, changeCell, logWarnings, robustnessSections } from '../../evaluation.js';
import { machineLine, reloadRun, toJson, writeText } from '../../run-folder/runs.js';
import { join } from 'node:path';
import { emit, resultFile, textTable } from '../../run-folder/context.js';
import type { CommandContext } from '../../run-folder/context.js';
import { warnIfNoOnnxRuntime } from '../../runtime-notice.js';
import { writeReport } from '../../run-folder/report.js';

/** Options of `advrec attack`. */
export interface AttackOptions {
  readonly run: string;
  readonly checkpoint?: string;
  readonly epsilons?: number[];
  readonly adversaries?: string[];
  readonly surfaces?: string[];
  readonly protocol?: 'full' | 'sampled';
  readonly seed?: number;
}

/** `advrec attack`: the robustness sweep (adversarial vs random, epsilon list) on a run's model. */
export async function attackCommand(
  options: AttackOptions,
  context: CommandContext,
): Promise<number> {
  if (await isSequentialRunFolder(options.run))
    return (await import('../../run-folder/sequential-commands.js')).attackSequentialRun(
      options,
      context,
    );
  const run = await reloadRun(options.run, options.checkpoint);
  const attack = {
    epsilons: options.epsilons ?? run.config.attack?.epsilons ?? [0.25, 0.5, 1, 2],
    adversaries: options.adversaries ?? run.config.attack?.adversaries ?? ['fgm', 'random'],
    surfaces: options.surfaces ?? run.config.attack?.surfaces ?? null,
  };
  const evaluation = {
    ...run.config.evaluation,
    ...(options.protocol ? { protocol: options.protocol } : {}),
  };
  const bar = context.progress.bar('robustness sweep', 1);
  await warnIfNoOnnxRuntime(context, evaluation.protocol);
  const report = await attackModel(
    run.model,
    run.data,
    evaluation,
    attack,
    options.seed ?? 0,
    run.config.training.threads,
    context.signal,
  );
  bar.finish();
  // Its own file: the run's robustness.json (from train) and earlier attacks stay as they are.
  const file = await resultFile(options.run, 'attack');
  await writeText(file, toJson({ checkpoint: run.checkpoint, ...report }));
  const metricKey = `ndcg@${evaluation.cutoffs[Math.min(1, evaluation.cutoffs.length - 1)]}`;
  const sections = robustnessSections([{ name: run.model.modelName, report }], metricKey, 'attack');
  await writeReport(file.replace(/\.json$/, ''), {
    title: `advrec attack: ${run.model.modelName} (${run.checkpoint})`,
    facts: [
      ['checkpoint', run.checkpoint],
      ['data set fingerprint', run.data.fingerprint],
      [
        'protocol',
        evaluation.protocol === 'full'
          ? 'full ranking, training and validation items excluded'
          : `sampled, ${evaluation.negatives} negatives`,
      ],
      ['machine', machineLine()],
    ],
    sections,
  });
  const epsilons = [...new Set(report.points.map((p) => p.epsilon))];
  logWarnings(context, report.warnings);
  const series = [...new Set(report.points.map((p) => `${p.adversary}\u0000${p.attack}`))];
  emit(context, { file, ...report }, () =>
    [
      textTable(
        ['perturbation', `clean ${metricKey}`, ...epsilons.map((e) => `eps ${e}`)],
        [
          ...series.map((key) => {
            const [adversary, attack] = key.split('\u0000') as [string, string];
            return [
              `${adversary}${attack === 'evaluation' ? ' (evaluation-side)' : ''}`,
              report.clean[metricKey] ?? Number.NaN,
              ...epsilons.map((e) => {
                const point = report.points.find(
                  (p) => p.adversary === adversary && p.attack === attack && p.epsilon === e,
                );
                return changeCell(point?.relativeChange[metricKey], point?.intervals[metricKey]);
              }),
            ];
          }),
          ...[...new Set(report.bounds.map((b) => `${b.surface}\u0000${b.norm}`))].map((key) => {
            const [surface, norm] = key.split('\u0000') as [string, string];
            const bounds = report.bounds.filter((b) => b.surface === surface && b.norm === norm);
            return [
              `${bounds[0]!.kind === 'exact' ? 'exact worst case' : 'certified bound'} (${surface} alone${norm === 'linf' ? ', L-inf' : ''})`,
              report.clean[metricKey] ?? Number.NaN,
              ...epsilons.map((e) =>
                changeCell(bounds.find((b) => b.epsilon === e)?.relativeChange[metricKey]),
              ),
            ];
          }),
        ],
      ),
      `surfaces: ${report.surfaces.join(', ')}; (n.s.): the ${Math.round(100 * report.confidence)}% paired interval covers zero; written: ${file} and ${join(file.replace(/\.json$/, ''), 'report.html')}`,
    ].join('\n'),
  );
  return 0;
}
