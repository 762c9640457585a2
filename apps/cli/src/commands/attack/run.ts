import { isSequentialRunFolder } from '../../run-folder/sequential-kind.js';
import {
  attackModel,
  logWarnings,
  robustnessLines,
  robustnessMetricKey,
  robustnessSections,
} from '../../evaluation.js';
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
  const metricKey = robustnessMetricKey(evaluation.cutoffs);
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
  emit(context, { file, ...report }, () =>
    [
      textTable(
        ['perturbation', `clean ${metricKey}`, ...epsilons.map((e) => `eps ${e}`)],
        robustnessLines(report, metricKey, epsilons, false).map((line) => [
          line.label,
          report.clean[metricKey] ?? Number.NaN,
          ...line.cells,
        ]),
      ),
      `surfaces: ${report.surfaces.join(', ')}; (n.s.): the ${Math.round(100 * report.confidence)}% paired interval covers zero; written: ${file} and ${join(file.replace(/\.json$/, ''), 'report.html')}`,
    ].join('\n'),
  );
  return 0;
}
