/**
 * The run configuration of `advrec train` (YAML or JSON). The JSON schema in
 * `schema/run-config.schema.json` is generated from these types (`pnpm --filter advrec
 * schema`), and a test fails when the two drift apart. Every field can be overridden on the
 * command line with `--set path=value`.
 *
 * @packageDocumentation
 */
import type { TrainConfig } from '@advrec/trainer';

/** Where the interactions come from and how they are split. */
export interface DataConfig {
  /**
   * A data set name (`synthetic`, `ml-100k`, `ml-1m`, `gowalla`, ... see `advrec datasets
   * list`) or a path to a file or folder.
   */
  source: string;
  /**
   * File format; `auto` guesses from the name (`u.data` -> movielens-100k, `ratings.dat` ->
   * movielens-dat, a folder with `train.txt` + `test.txt` -> user-item-lists with a given
   * split, `*.train.rating` -> ncf, a folder with `pos.txt` + `neg.txt` -> amr, `*.inter`
   * (or a folder with one) -> mmrec, with its train / validation / test split by `x_label`; a
   * `.txt` whose lines all have the same 3 or 4 fields with a non-integer among them, such as
   * `user item weight`, -> csv rather than per-user lists).
   * @default "auto"
   */
  format?:
    | 'auto'
    | 'movielens-100k'
    | 'movielens-dat'
    | 'user-item-lists'
    | 'ncf'
    | 'amr'
    | 'mmrec'
    | 'csv';
  /**
   * The test file of a given split: for `user-item-lists` (default `test.txt` beside the
   * source) and `csv` (then the source is the training file and the split is `given`).
   */
  testPath?: string;
  /**
   * The validation file of a given split (train / valid / test as NGCF, LightGCN and MMRec
   * publish them), for `user-item-lists` (default: `valid.txt` or `validation.txt` beside
   * the source, when there is one) and `csv` with a `testPath`. Used as the validation split
   * instead of holding one interaction per user out of train (`data.validation`).
   */
  validationPath?: string;
  /**
   * Text encoding of a `csv` source (and its test file). UTF-8 is read strictly: bytes that
   * are not UTF-8 are an error naming the line, so a Latin-1 file is never read as mangled ids.
   * @default "utf-8"
   */
  encoding?: 'utf-8' | 'latin1';
  /** How to split the interactions into train / test (ignored when the files give the split). */
  split?: SplitConfig;
  /**
   * A validation split, used for early stopping: the given validation file when the source
   * has one (`data.validationPath`, or `valid.txt` / `validation.txt` beside a
   * user-item-lists `train.txt`), else carved from train (the latest, or a random, training
   * interaction per user). `false`: none.
   * @default true
   */
  validation?: boolean;
  /**
   * Item feature matrix for VBPR/AMR: a `.npy` whose rows are matched to items by the item ids
   * of its `.manifest.json` (what `advrec features` writes); without a manifest, row `r` is
   * the item whose source id is the integer `r` (ML-1M movie ids, say), not the r-th item.
   */
  features?: string;
  /** Settings of the embedded synthetic data set (source `synthetic`). */
  synthetic?: SyntheticConfig;
}

/** Split protocol. */
export interface SplitConfig {
  /**
   * `leave-one-out` (one test interaction per user: APR, NCF), `ratio` (a fraction per
   * user), `given` (the files' own split), or `auto`: the files' split when they carry one
   * (train.txt + test.txt, NCF, AMR), else leave-one-out.
   * @default "auto"
   */
  protocol?: 'auto' | 'leave-one-out' | 'ratio' | 'given';
  /**
   * Which interactions go to test and validation: `latest` / `temporal` (by timestamp),
   * `random`, or `auto`: by timestamp when the data has timestamps, else random (the split
   * records which one it used).
   * @default "auto"
   */
  order?: 'auto' | 'latest' | 'random' | 'temporal';
  /**
   * Test fraction for `ratio`.
   * @minimum 0
   * @maximum 1
   * @default 0.2
   */
  testFraction?: number;
  /**
   * Split seed.
   * @minimum 0
   * @default 42
   */
  seed?: number;
}

/** The embedded synthetic data set (planted low-rank preferences, popularity skew). */
export interface SyntheticConfig {
  /**
   * @minimum 2
   * @default 2000
   */
  users?: number;
  /**
   * @minimum 2
   * @default 1500
   */
  items?: number;
  /**
   * Dimension of planted item features (0 = none; AMR runs need some).
   * @minimum 0
   * @default 0
   */
  featureDimension?: number;
  /**
   * @minimum 0
   * @default 42
   */
  seed?: number;
}

/** Which model and its hyper-parameters. */
export interface ModelConfig {
  /** A registered model name: `mf`, `vbpr`, `item-pop`, `neumf`, or a plugin's. */
  name: string;
  /**
   * K, the embedding size.
   * @minimum 1
   * @default 64
   */
  embeddingSize?: number;
  /**
   * Initialisation seed (default: the model's own, 0 for the built-in models).
   * @minimum 0
   */
  seed?: number;
  /** Further model-specific options, passed to the model's factory as they are. */
  options?: Record<string, string | number | boolean | null>;
}

/**
 * The training schedule and settings: every field of the library's `TrainConfig`
 * (`@advrec/trainer`, where each default and check lives), plus the schedule of a run.
 */
export interface TrainingSection extends TrainConfig {
  /**
   * BPR (pre-training) epochs.
   * @minimum 0
   * @default 100
   */
  epochs?: number;
  /**
   * Adversarial (APR / AMR) epochs after pre-training; 0 trains BPR only.
   * @minimum 0
   * @default 0
   */
  adversarialEpochs?: number;
  /**
   * VBPR only: MF-BPR epochs trained first, whose ID embeddings (and optimiser state) VBPR
   * then starts from, as in the AMR paper's Algorithm 1 (`reproduce amr` does the same). The
   * MF epochs train on the BPR epochs' config (`training.pretraining` when given: for a
   * warm-started VBPR it configures these MF epochs, and VBPR's own epochs keep the run's
   * settings) with its validation and early stopping, keeping the best epoch. Default 100 for
   * VBPR; 0 trains VBPR from a random start, which on real features lands far below MF-BPR.
   * Not resumable: a run stopped during these epochs starts again.
   * @minimum 0
   */
  mfEpochs?: number;
  /**
   * Write a resumable checkpoint every this many epochs (0 = only the best and the final).
   * @minimum 0
   * @default 10
   */
  checkpointEvery?: number;
  /**
   * How the BPR (pre-training) epochs train when that differs from the adversarial epochs:
   * each field given here replaces the one above for the BPR epochs only (`validation`
   * field by field). The fast route to a good MF is Cornac's per-triple SGD
   * (`algorithm: sgd-triples`, `optimizer: { name: sgd, learningRate: 0.05 }`, `l2: 0.001`,
   * with `model.options.itemBias: true`), followed by AMF in APR's mini-batch Adagrad: APR's
   * Algorithm 1 with the fastest pre-training. With it, the adversarial epochs start from the
   * best BPR epoch's parameters with a fresh optimiser state, as the APR code starts a new
   * Adagrad.
   */
  pretraining?: PretrainingSection;
}

/** What `training.pretraining` may replace: everything but the adversary. */
export type PretrainingSection = Omit<TrainConfig, 'adversarial'>;

/** The test evaluation after training. */
export interface EvaluationSection {
  /**
   * `full` ranking (every item except the user's training and validation items; APR) or
   * `sampled` (the test item among sampled negatives; AMR: 999, NCF: 99).
   * @default "full"
   */
  protocol?: 'full' | 'sampled';
  /**
   * Negatives per test case for the sampled protocol.
   * @minimum 1
   * @default 999
   */
  negatives?: number;
  /** Cutoffs K (default [10, 20, 50, 100]). */
  cutoffs?: number[];
  /** Metrics (default hr, ndcg, recall, mrr). */
  metrics?: ('hr' | 'recall' | 'precision' | 'ndcg' | 'mrr' | 'map' | 'auc')[];
}

/** The robustness sweep written into the report (APR Table 2 / AMR Table 3). */
export interface AttackSection {
  /**
   * Epsilons of the sweep (default [0.25, 0.5, 1, 2]). For VBPR with no `surfaces` named,
   * relative to the prepared features' mean row norm.
   */
  epsilons?: number[];
  /** Adversaries compared (default fgm and random). */
  adversaries?: string[];
  /** Surfaces attacked (default every surface of the model; VBPR: `itemFeatures`, AMR's attack). */
  surfaces?: string[];
}

/** A whole run of a pairwise model (MF, VBPR, ItemPop, NeuMF, a plugin's): `advrec train --config run.yaml`. */
export interface PairwiseRunConfig {
  /** Path of the JSON schema, for editors (ignored). */
  $schema?: string;
  data: DataConfig;
  model: ModelConfig;
  training?: TrainingSection;
  evaluation?: EvaluationSection;
  /** When present, `advrec train` also runs this robustness sweep on the trained model. */
  attack?: AttackSection;
  /** Modules to load before the run (register plugin models and adversaries). */
  plugins?: string[];
}

/** A sequential model and its options, passed to its factory as they are. */
export interface SequentialModelSection {
  /**
   * A registered sequential model: `sasrec` (options `dimension`, `maxLength`, `blocks`,
   * `dropout`, `seed`), `gru4rec` (`dimension`, `hiddenSize`, `maxLength`, `dropout`, `seed`)
   * or a plugin's.
   */
  name: string;
  [option: string]: string | number | boolean | null;
}

/** How a sequential model is trained: the model, then optionally ATSRec from its best epoch. */
export interface SequentialTrainingSection {
  /**
   * Epochs of the model, with early stopping on validation.
   * @minimum 0
   * @default 200
   */
  epochs?: number;
  /**
   * ATSRec epochs after the model's best epoch (0: none).
   * @minimum 0
   * @default 0
   */
  adversarialEpochs?: number;
  /**
   * Sequences per batch.
   * @minimum 1
   * @default 128
   */
  batchSize?: number;
  /**
   * Adam's learning rate.
   * @exclusiveMinimum 0
   * @default 0.001
   */
  learningRate?: number;
  /**
   * Seed of the model's initialisation, the batches and the sampled negatives.
   * @minimum 0
   * @default 2024
   */
  seed?: number;
  /**
   * Validate every this many epochs.
   * @minimum 1
   * @default 5
   */
  validateEvery?: number;
  /**
   * Stop after this many validations without improvement.
   * @minimum 1
   * @default 3
   */
  patience?: number;
  /**
   * What runs each batch's forward and backward: `auto` (the model's hand-written kernel when
   * it has one, as SASRec does, and onnxruntime is installed; tfjs autodiff otherwise),
   * `model-kernel` or `tfjs`. The run record says which ran.
   * @default "auto"
   */
  engine?: 'auto' | 'model-kernel' | 'tfjs';
  /**
   * Group each epoch's sequences by length, each batch cut to its longest row (the same
   * outputs as padding every row to `maxLength`, several times faster on short sequences);
   * `false`: random batches padded to `maxLength`, as the SASRec code.
   * @default true
   */
  bucketByLength?: boolean;
  /**
   * How a batch's loss weighs its positions. `epoch`: the sum over the batch's positions
   * divided by the epoch's mean positions per batch, so that every position weighs the same
   * whichever batch it falls in (with `bucketByLength`, what random batches do on average);
   * `batch`: the mean over the batch's own positions (the SASRec code's; with batches grouped
   * by length it weighs a short sequence's positions many times more, and trains worse).
   * @default "epoch"
   */
  positionWeighting?: 'batch' | 'epoch';
  /** ATSRec: FGM on the item embeddings of each batch. */
  adversarial?: {
    /**
     * Epsilon relative to the mean item-row norm when ATSRec starts.
     * @minimum 0
     * @default 0.1
     */
    epsilon?: number;
    /**
     * Lambda, the weight of the loss under the perturbation.
     * @minimum 0
     * @default 1
     */
    adversarialWeight?: number;
  };
}

/** How a sequential run is evaluated (the SASRec paper's protocol). */
export interface SequentialEvaluationSection {
  /**
   * Sampled items each target is ranked against.
   * @minimum 1
   * @default 100
   */
  negatives?: number;
  /**
   * FGM on the item embeddings at test time: epsilons relative to the mean item-row norm.
   * @default [0.25, 0.5, 1]
   */
  attackEpsilons?: number[];
}

/** A whole run of a sequential model (SASRec, GRU4Rec, a plugin's): `advrec train --config run.yaml`. */
export interface SequentialRunConfigFile {
  /** Path of the JSON schema, for editors (ignored). */
  $schema?: string;
  data: {
    /** A `user item [timestamp]` or `user item rating timestamp` file, or `synthetic`. */
    source: string;
  };
  model: SequentialModelSection;
  training?: SequentialTrainingSection;
  evaluation?: SequentialEvaluationSection;
  /** Modules to load before the run (register plugin models). */
  plugins?: string[];
}

/**
 * A whole run: `advrec train --config run.yaml`. Which of the two a config is follows from
 * its model: the registry knows each model as pairwise or sequential.
 */
export type RunConfig = PairwiseRunConfig | SequentialRunConfigFile;
