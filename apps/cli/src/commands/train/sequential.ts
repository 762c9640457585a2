/**
 * Sequential recommendation on the command line: `advrec train` with `model: sasrec | gru4rec`
 * and `advrec reproduce atsrec`. A user is the sequence of their items (by timestamp, else in
 * file order); the split is the SASRec paper's (last item test, the one before validation);
 * each target is ranked against sampled negatives (HR@10, NDCG@10).
 */
import { shorthandOverrides } from '../../shorthands.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, DataFormatError } from '@advrec/data';
import { writeCheckpoint } from '@advrec/models';
import type { JsonObject } from '@advrec/models';
import {
  evaluateSequentialArm,
  meanItemRowNorm,
  runAtsrecExperiment,
  sequenceTrainStateFromCheckpoint,
  sequenceTrainStateToCheckpoint,
  trainSequentialModel,
} from '@advrec/trainer';
import type {
  AtsrecHooks,
  AtsrecTrainingSettings,
  SequenceEpochEvent,
  SequenceTrainResult,
  SequenceTrainState,
  SequentialArm,
  SequentialArmEvaluation,
} from '@advrec/trainer';
import { applyOverrides } from '../../config.js';
import { readJsonFile } from '../../catalog/load.js';
import {
  claimRunFolder,
  emit,
  lockRunFolder,
  pValue,
  percent,
  textTable,
} from '../../run-folder/context.js';
import type { CommandContext } from '../../run-folder/context.js';
import { machineLine, toJson, writeText } from '../../run-folder/runs.js';
import { writeReport } from '../../run-folder/report.js';
import { checkResumeConfig } from '../../run-folder/resume-config.js';
import type { ReportSection } from '../../run-folder/report.js';

/** One trained arm of a sequential run, with the label its tables and reports show. */
type Arm = SequentialArm & { readonly label: string };

/** What both commands share: folder, data, model. */
async function startSequentialRun(
  config: SequentialRunConfig,
  kind: string,
  options: { readonly out?: string; readonly force?: boolean },
  context: CommandContext,
) {
  const opened = await openSequentialRun(config);
  const { split, backend, validation, test } = opened;
  const { folder, release } = await claimRunFolder(options.out, kind, config, context.progress, {
    force: options.force ?? false,
  });
  context.progress.log(
    `${config.model.name} on ${split.source}: ${split.numUsers} users, ${split.numItems} items, ${validation.users.length} validation and ${test.users.length} test targets against ${config.evaluation.negatives} sampled negatives; tfjs ${backend}`,
  );
  await writeText(join(folder, 'config.json'), toJson(config));
  return { ...opened, folder, release };
}

type Started = Awaited<ReturnType<typeof startSequentialRun>>;
export type SequentialRun = Started;

/** Which phase a sequential `train` run's `last.ckpt` continues, and what came before it. */
interface PhaseRecord {
  readonly phase: 'base' | 'adversarial';
  /** The base phase's outcome, once it is over (the adversarial phase follows it). */
  readonly base: {
    readonly epochs: readonly SequenceEpochEvent[];
    readonly bestEpoch: number;
    readonly bestValidation: { hitRate: number; ndcg: number } | null;
    readonly stoppedEarly: boolean;
    /** Absolute epsilon of the adversarial phase (relative x the mean item-row norm then). */
    readonly epsilon: number;
  } | null;
}

/** `checkpoints/last.ckpt` of a sequential run: the tables, the training state, the phase. */
async function writeLastCheckpoint(
  run: Started,
  config: SequentialRunConfig,
  record: PhaseRecord,
  state: SequenceTrainState,
): Promise<void> {
  const { extraTables, metadata } = sequenceTrainStateToCheckpoint(state, run.model.tables);
  await writeCheckpoint(join(run.folder, 'checkpoints', 'last.ckpt'), run.model, extraTables, {
    config: toJsonObject(config),
    state: metadata,
    ...toJsonObject(record),
  });
}

/** Progress bars for the phases of a sequential run: one per phase, updated every epoch. */
function phaseProgress(context: CommandContext): Required<
  Pick<AtsrecHooks, 'onPhase' | 'onEpoch' | 'onPhaseEnd'>
> & {
  resumed(done: number): void;
} {
  let bar: ReturnType<CommandContext['progress']['bar']> | null = null;
  let startEpoch = 0;
  return {
    onPhase: ({ label, epochs, startEpoch: first }) => {
      bar = context.progress.bar(label, Math.max(1, epochs));
      startEpoch = first;
    },
    resumed: (done) => bar?.update(done, `resumed after ${done} epochs`),
    onEpoch: (e) => {
      if (!bar) return;
      bar.update(
        e.epoch - startEpoch + 1,
        `loss ${e.loss.toFixed(4)}${e.validation ? `, valid NDCG@10 ${e.validation.ndcg.toFixed(4)}` : ''}, ${Math.round(e.sequencesPerSecond)} seq/s`,
      );
    },
    onPhaseEnd: (result) => {
      bar?.finish(
        result.interrupted
          ? `interrupted after ${result.epochs.length} epochs`
          : result.bestValidation
            ? `best valid NDCG@10 ${result.bestValidation.ndcg.toFixed(4)} after epoch ${result.bestEpoch + 1}${result.stoppedEarly ? ' (stopped early)' : ''}`
            : `${result.epochs.length} epochs`,
        result.epochs.length,
      );
      bar = null;
    },
  };
}

/** One phase of `advrec train` (the model, or ATSRec after it), `last.ckpt` after every epoch. */
async function trainPhase(
  run: Started,
  config: SequentialRunConfig,
  context: CommandContext,
  phase: {
    label: string;
    epochs: number;
    startEpoch: number;
    validate: boolean;
    adversarial?: { epsilon: number; adversarialWeight: number };
    /** Continue this state (train --resume). */
    resume?: SequenceTrainState;
    /** Write `last.ckpt` after every epoch with this phase record. */
    record: PhaseRecord;
  },
): Promise<SequenceTrainResult> {
  const progress = phaseProgress(context);
  progress.onPhase({
    kind: 'base',
    label: phase.label,
    epochs: phase.epochs,
    startEpoch: phase.startEpoch,
  });
  const done = phase.resume?.epochs.length ?? 0;
  if (done > 0) progress.resumed(done);
  const result = await trainSequentialModel(run.tf, run.model, run.split, {
    ...trainingSettings(config, context),
    epochs: phase.epochs,
    seed: config.training.seed,
    startEpoch: phase.startEpoch,
    ...(phase.resume ? { resume: phase.resume } : {}),
    ...(phase.adversarial ? { adversarial: phase.adversarial } : {}),
    ...(phase.validate
      ? {
          validateEvery: config.training.validateEvery,
          patience: config.training.patience,
          validation: run.validation,
        }
      : {}),
    onEpoch: progress.onEpoch,
    onEpochState: (state) => writeLastCheckpoint(run, config, phase.record, state),
  });
  progress.onPhaseEnd(result);
  return result;
}

/** What every phase of a sequential run trains with, from the run config. */
function trainingSettings(
  config: SequentialRunConfig,
  context: CommandContext,
): AtsrecTrainingSettings {
  return {
    batchSize: config.training.batchSize,
    adam: { learningRate: config.training.learningRate },
    engine: config.training.engine,
    bucketByLength: config.training.bucketByLength,
    positionWeighting: config.training.positionWeighting,
    signal: context.signal,
  };
}

/** Ctrl-C or SIGTERM stopped a sequential run: `run.json` says so; exit code 130. */
async function stopInterrupted(
  run: Started,
  command: string,
  started: Date,
  context: CommandContext,
  resumable: boolean,
): Promise<number> {
  await writeText(
    join(run.folder, 'run.json'),
    toJson({ command, status: 'interrupted', started, ended: new Date(), backend: run.backend }),
  );
  context.progress.log(
    resumable
      ? `interrupted: the last complete epoch is in ${join(run.folder, 'checkpoints', 'last.ckpt')}; advrec train --resume ${run.folder} continues it`
      : `interrupted (reproduce atsrec is not resumable: run the command again)`,
  );
  return 130;
}

/** The model as it stands, evaluated and labelled. */
async function evaluateArm(
  run: Started,
  config: SequentialRunConfig,
  label: string,
  training: SequenceTrainResult,
): Promise<Arm> {
  const arm = await evaluateSequentialArm(
    run.tf,
    run.model,
    run.split,
    { kind: 'base', training },
    armEvaluation(run, config),
  );
  return { ...arm, label };
}

function armEvaluation(run: Started, config: SequentialRunConfig): SequentialArmEvaluation {
  return {
    validation: run.validation,
    test: run.test,
    attackEpsilons: config.evaluation.attackEpsilons,
    seed: config.training.seed,
  };
}

function historyOf(arm: Arm) {
  return arm.training.epochs.map((e) => ({
    epoch: e.epoch + 1,
    loss: e.loss,
    adversarialLoss: e.adversarialLoss ?? null,
    seconds: e.seconds,
    sequencesPerSecond: e.sequencesPerSecond,
    validation: e.validation ?? null,
  }));
}

function armRow(arm: Arm): (string | number)[] {
  return [arm.label, arm.test.hitRate, arm.test.ndcg, arm.itemEmbeddingMeanCosine];
}

function robustnessTable(arms: readonly Arm[]): { columns: string[]; rows: (string | number)[][] } {
  const epsilons = arms[0]!.robustness.map((r) => `eps ${r.relativeEpsilon}`);
  return {
    columns: ['model', ...epsilons],
    rows: arms.map((a) => [a.label, ...a.robustness.map((r) => percent(r.ndcgChange))]),
  };
}

const ARM_COLUMNS = ['model', 'HR@10', 'NDCG@10', 'item mean cosine'];

async function finish(
  run: Started,
  config: SequentialRunConfig,
  context: CommandContext,
  command: string,
  arms: readonly Arm[],
  comparison: {
    label: string;
    hitRate: { change: number; p: number };
    ndcg: { change: number; p: number };
  } | null,
  started: Date,
): Promise<void> {
  const robustness = robustnessTable(arms);
  const results = {
    command,
    model: config.model.name,
    data: run.split.source,
    users: run.split.numUsers,
    items: run.split.numItems,
    testTargets: run.test.users.length,
    negatives: config.evaluation.negatives,
    arms: arms.map((a) => ({
      label: a.label,
      hitRate10: a.test.hitRate,
      ndcg10: a.test.ndcg,
      validation: { hitRate10: a.validation.hitRate, ndcg10: a.validation.ndcg },
      itemEmbeddingMeanCosine: a.itemEmbeddingMeanCosine,
      fgmOnItemEmbeddings: a.robustness,
      epochs: a.training.epochs.length,
      bestEpoch: a.training.bestEpoch + 1,
      engine: a.training.engine,
    })),
    ...(comparison ? { comparison } : {}),
  };
  await writeText(join(run.folder, 'results.json'), toJson(results));
  await writeText(
    join(run.folder, 'history.json'),
    toJson(Object.fromEntries(arms.map((a) => [a.label, historyOf(a)]))),
  );
  const protocol = `last item test, second-to-last validation; each target ranked against ${config.evaluation.negatives} sampled items the user never interacted with; HR@10 and NDCG@10, ties pessimistic`;
  const sections: ReportSection[] = [
    {
      kind: 'table',
      title: 'Test',
      caption: `Protocol: ${protocol}.`,
      columns: ARM_COLUMNS,
      rows: arms.map(armRow),
    },
    {
      kind: 'table',
      title: 'Robustness: NDCG@10 change under FGM on the item embeddings',
      caption:
        'Epsilon relative to the mean item-row norm; the perturbation follows the gradient of the training loss, per item row.',
      columns: robustness.columns,
      rows: robustness.rows,
    },
  ];
  if (comparison)
    sections.push({
      kind: 'table',
      title:
        'ATSRec against the model continued for the same epochs (paired t-test over test users)',
      columns: ['metric', 'change', 'p'],
      rows: [
        ['HR@10', percent(comparison.hitRate.change), pValue(comparison.hitRate.p)],
        ['NDCG@10', percent(comparison.ndcg.change), pValue(comparison.ndcg.p)],
      ],
    });
  await writeReport(run.folder, {
    title: `advrec ${command}: ${config.model.name}`,
    facts: [
      ['data', `${run.split.source}: ${run.split.numUsers} users, ${run.split.numItems} items`],
      ['model', `${config.model.name} ${JSON.stringify(run.model.config)}`],
      ['backend', `tfjs ${run.backend}`],
      ['engine', [...new Set(arms.map((a) => a.training.engine.description))].join('; ')],
      ['date', started.toISOString()],
      ['machine', machineLine()],
    ],
    sections,
  });
  await writeText(
    join(run.folder, 'run.json'),
    toJson({
      command,
      status: 'done',
      started,
      ended: new Date(),
      backend: run.backend,
      engine: arms.at(-1)?.training.engine ?? null,
    }),
  );
  emit(context, { folder: run.folder, ...results }, () => {
    const lines = [textTable(ARM_COLUMNS, arms.map(armRow))];
    lines.push(
      '',
      'NDCG@10 change under FGM on the item embeddings (epsilon x mean item-row norm):',
    );
    lines.push(textTable(robustness.columns, robustness.rows));
    if (comparison)
      lines.push(
        '',
        `ATSRec vs continued: HR@10 ${percent(comparison.hitRate.change)} (p ${pValue(comparison.hitRate.p)}), NDCG@10 ${percent(comparison.ndcg.change)} (p ${pValue(comparison.ndcg.p)})`,
      );
    lines.push('', `run folder: ${run.folder}`);
    return lines.join('\n');
  });
}

/**
 * The phases of a sequential `train` run from where `resume` stands (none: the start): the
 * model with early stopping on validation, then (with `training.adversarialEpochs`) ATSRec
 * from the best epoch with its Adam state; `last.ckpt` after every epoch. Returns the arm's
 * label and training, or null when a signal stopped it.
 */
async function trainSequentialPhases(
  run: Started,
  config: SequentialRunConfig,
  context: CommandContext,
  resume?: { readonly record: PhaseRecord; readonly state: SequenceTrainState },
): Promise<{ label: string; training: SequenceTrainResult } | null> {
  let base: PhaseRecord['base'] = resume?.record.base ?? null;
  let baseResult: SequenceTrainResult | null = null;
  if (!base) {
    baseResult = await trainPhase(run, config, context, {
      label: `${config.model.name} epochs`,
      epochs: config.training.epochs,
      startEpoch: 0,
      validate: true,
      record: { phase: 'base', base: null },
      ...(resume ? { resume: resume.state } : {}),
    });
    if (baseResult.interrupted) return null;
    base = {
      epochs: baseResult.epochs,
      bestEpoch: baseResult.bestEpoch,
      bestValidation: baseResult.bestValidation ?? null,
      stoppedEarly: baseResult.stoppedEarly,
      epsilon: config.training.adversarial.epsilon * meanItemRowNorm(run.model),
    };
  }
  if (config.training.adversarialEpochs === 0)
    return { label: config.model.name, training: baseResult! };
  const record: PhaseRecord = { phase: 'adversarial', base };
  const start: SequenceTrainState =
    resume?.record.phase === 'adversarial'
      ? resume.state
      : {
          startEpoch: base.epochs.length,
          epochs: [],
          optimizer: baseResult!.optimizer,
          best: null,
          sinceBest: 0,
        };
  // The best base epoch's tables with its Adam state: where ATSRec starts (and a kill between
  // the phases resumes).
  if (resume?.record.phase !== 'adversarial') await writeLastCheckpoint(run, config, record, start);
  const adversarial = await trainPhase(run, config, context, {
    label: 'ATSRec epochs',
    epochs: config.training.adversarialEpochs,
    startEpoch: base.epochs.length,
    validate: false,
    resume: start,
    adversarial: {
      epsilon: base.epsilon,
      adversarialWeight: config.training.adversarial.adversarialWeight,
    },
    record,
  });
  if (adversarial.interrupted) return null;
  return {
    label: `${config.model.name} + ATSRec`,
    training: { ...adversarial, epochs: [...base.epochs, ...adversarial.epochs] },
  };
}

/** Test metrics, robustness and the run folder's files after the phases. */
async function finishTrainRun(
  run: Started,
  config: SequentialRunConfig,
  context: CommandContext,
  outcome: { label: string; training: SequenceTrainResult } | null,
  started: Date,
): Promise<number> {
  if (!outcome) return stopInterrupted(run, 'train', started, context, true);
  await writeCheckpoint(join(run.folder, 'checkpoints', 'model.ckpt'), run.model, [], {
    config: toJsonObject(config),
  });
  const arm = await evaluateArm(run, config, outcome.label, outcome.training);
  await finish(run, config, context, 'train', [arm], null, started);
  return 0;
}

/**
 * `advrec train` for a sequential model: the model with early stopping on validation, then
 * (with `training.adversarialEpochs`) ATSRec from the best epoch; test metrics, robustness to
 * FGM on the item embeddings, the run folder. Ctrl-C stops after the current batch with
 * `last.ckpt` at the last complete epoch (exit 130); `advrec train --resume` continues it.
 */
export async function trainSequentialCommand(
  raw: Record<string, unknown>,
  options: { readonly out?: string; readonly force?: boolean; readonly set?: readonly string[] },
  context: CommandContext,
): Promise<number> {
  const started = new Date();
  const config = await resolveSequentialRun(
    applyOverrides(raw, options.set ?? []) as Record<string, unknown>,
    { adversarialEpochs: 0 },
  );
  const run = await startSequentialRun(config, 'train', options, context);
  try {
    return await finishTrainRun(
      run,
      config,
      context,
      await trainSequentialPhases(run, config, context),
      started,
    );
  } finally {
    await run.release();
  }
}

/**
 * `advrec train --resume` of a sequential run: its own config, the model and training state
 * of `last.ckpt`, the phase it was in; the run ends as the uninterrupted run would have.
 */
export async function resumeSequentialCommand(
  folder: string,
  context: CommandContext,
): Promise<number> {
  const started = new Date();
  const last = join(folder, 'checkpoints', 'last.ckpt');
  const runRecord = join(folder, 'run.json');
  if (existsSync(runRecord)) {
    const { status } = (await readJsonFile(runRecord, 'the run record advrec wrote')) as {
      status?: unknown;
    };
    if (status === 'done')
      throw new ConfigError([
        {
          path: '--resume',
          message: `${folder} holds a finished run (run.json status done): nothing to resume`,
        },
      ]);
  }
  const { config, checkpoint, model } = await reloadSequentialRun(folder, last);
  const metadata = checkpoint.metadata as { state?: unknown; phase?: unknown; base?: unknown };
  if (
    (metadata.phase !== 'base' && metadata.phase !== 'adversarial') ||
    typeof metadata.state !== 'object' ||
    metadata.state === null
  )
    throw new DataFormatError({ file: last }, 'the training state of a sequential run', 'none');
  const unverified = checkResumeConfig(last, checkpoint.metadata['config'], config);
  if (unverified) context.progress.log(`warning: ${unverified}`);
  const release = await lockRunFolder(folder);
  try {
    const opened = await openSequentialRun(config, model);
    const run: Started = { ...opened, folder, release };
    const state = sequenceTrainStateFromCheckpoint(
      checkpoint.extraTables,
      metadata.state as JsonObject,
      model.tables,
      last,
    );
    const record: PhaseRecord = {
      phase: metadata.phase,
      base: (metadata.base ?? null) as PhaseRecord['base'],
    };
    context.progress.log(
      `resuming ${folder} after ${state.epochs.length} epochs of its ${record.phase} phase (tfjs ${opened.backend})`,
    );
    return await finishTrainRun(
      run,
      config,
      context,
      await trainSequentialPhases(run, config, context, { record, state }),
      started,
    );
  } finally {
    await release();
  }
}

import {
  openSequentialRun,
  reloadSequentialRun,
  resolveSequentialRun,
  toJsonObject,
} from '../../run-folder/sequential.js';
import type { SequentialRunConfig } from '../../run-folder/sequential.js';

/** Options of `advrec reproduce atsrec`. */
export interface ReproduceAtsrecOptions {
  readonly data?: string;
  readonly model?: string;
  readonly out?: string;
  readonly force?: boolean;
  readonly epochs?: number;
  readonly adversarialEpochs?: number;
  readonly epsilon?: number;
  readonly lambda?: number;
  readonly epsilons?: number[];
  readonly set?: readonly string[];
}

/**
 * `advrec reproduce atsrec`: the sequential model with early stopping, then from its best epoch
 * (with its Adam state) the model continued and ATSRec for the same epochs; test metrics, the
 * paired t-test, the item-embedding diversity of both, and both models' drops under FGM on the
 * item embeddings.
 */
export async function reproduceAtsrecCommand(
  options: ReproduceAtsrecOptions,
  context: CommandContext,
): Promise<number> {
  const started = new Date();
  const shorthands = shorthandOverrides(options);
  const config = await resolveSequentialRun(
    applyOverrides({}, [...shorthands, ...(options.set ?? [])]) as Record<string, unknown>,
    { adversarialEpochs: 10 },
  );
  if (config.training.adversarialEpochs === 0)
    throw new ConfigError([
      {
        path: 'training.adversarialEpochs',
        message: 'reproduce atsrec needs adversarial epochs (>= 1)',
      },
    ]);
  const run = await startSequentialRun(config, 'reproduce-atsrec', options, context);
  const name = config.model.name;
  const checkpoint = {
    base: 'pretrained.ckpt',
    continued: 'continued.ckpt',
    atsrec: 'atsrec.ckpt',
  };
  try {
    const experiment = await runAtsrecExperiment(run.tf, run.model, run.split, {
      ...armEvaluation(run, config),
      epochs: config.training.epochs,
      continueEpochs: config.training.adversarialEpochs,
      relativeEpsilons: [config.training.adversarial.epsilon],
      adversarialWeight: config.training.adversarial.adversarialWeight,
      validateEvery: config.training.validateEvery,
      patience: config.training.patience,
      training: trainingSettings(config, context),
      hooks: {
        ...phaseProgress(context),
        onArmTrained: (arm) =>
          writeCheckpoint(join(run.folder, 'checkpoints', checkpoint[arm.kind]), run.model),
      },
    });
    if (!experiment) return await stopInterrupted(run, 'reproduce atsrec', started, context, false);
    // The model both arms start from, evaluated as it is; then the two arms.
    const arms: Arm[] = [
      { ...experiment.base, label: name },
      { ...experiment.continued, label: `${name} continued` },
      { ...experiment.atsrec[0]!, label: `${name} + ATSRec` },
    ];
    const versus = experiment.versusContinued[0]!;
    const comparison = {
      label: `${arms[2]!.label} vs ${arms[1]!.label}`,
      hitRate: versus.hitRate10,
      ndcg: versus.ndcg10,
    };
    await finish(run, config, context, 'reproduce atsrec', arms, comparison, started);
    return 0;
  } finally {
    await run.release();
  }
}
