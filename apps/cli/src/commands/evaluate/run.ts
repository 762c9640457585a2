import { isSequentialRunFolder } from '../../run-folder/sequential-kind.js';
import { evaluateModel, metricsTable, protocolLine } from '../../evaluation.js';
import { reloadRun, toJson, writeText } from '../../run-folder/runs.js';
import { relative } from 'node:path';
import type { ResolvedRunConfig } from '../../config.js';
import { emit, resultFile } from '../../run-folder/context.js';
import type { CommandContext } from '../../run-folder/context.js';
import { warnIfNoOnnxRuntime } from '../../runtime-notice.js';

/** Options of `advrec evaluate`. */
export interface EvaluateOptions {
  readonly run: string;
  readonly checkpoint?: string;
  readonly protocol?: 'full' | 'sampled';
  readonly negatives?: number;
  readonly cutoffs?: number[];
  readonly metrics?: string[];
  readonly split?: 'test' | 'validation';
  readonly seed?: number;
}

/** `advrec evaluate`: evaluates a run's model under either protocol. */
export async function evaluateCommand(
  options: EvaluateOptions,
  context: CommandContext,
): Promise<number> {
  if (await isSequentialRunFolder(options.run))
    return (await import('../../run-folder/sequential-commands.js')).evaluateSequentialRun(
      options,
      context,
    );
  const run = await reloadRun(options.run, options.checkpoint);
  const evaluation = {
    ...run.config.evaluation,
    ...(options.protocol ? { protocol: options.protocol } : {}),
    ...(options.negatives ? { negatives: options.negatives } : {}),
    ...(options.cutoffs ? { cutoffs: options.cutoffs } : {}),
    ...(options.metrics
      ? { metrics: options.metrics as ResolvedRunConfig['evaluation']['metrics'] }
      : {}),
  };
  const bar = context.progress.bar(
    `evaluating ${relative(process.cwd(), run.checkpoint) || run.checkpoint}`,
    1,
  );
  await warnIfNoOnnxRuntime(context, evaluation.protocol);
  const result = await evaluateModel(run.model, run.data, evaluation, {
    split: options.split ?? 'test',
    seed: options.seed ?? run.config.data.split.seed,
    threads: run.config.training.threads,
  });
  bar.finish(`${result.seconds.toFixed(1)} s`);
  // Its own file: earlier evaluations of the run stay as they are.
  const file = await resultFile(
    options.run,
    `evaluation-${evaluation.protocol}-${options.split ?? 'test'}`,
  );
  await writeText(
    file,
    toJson({
      checkpoint: run.checkpoint,
      metrics: result.metrics,
      coverage: result.coverage,
      protocol: result.protocol,
    }),
  );
  emit(
    context,
    { checkpoint: run.checkpoint, metrics: result.metrics, protocol: result.protocol, file },
    () =>
      [
        metricsTable([[run.model.modelName, result]]),
        `protocol: ${protocolLine(result)}`,
        `written: ${file}`,
      ].join('\n'),
  );
  return 0;
}
