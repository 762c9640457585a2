// One measurement of `pnpm bench engine-seam`, against the packages of one checkout:
//   node bench/scripts/measure.mjs <checkout root> <task> <shared data dir> <seed>
// Prints one JSON line. It uses only APIs both the old and the new main have (Trainer,
// MatrixFactorization, VisualBPR, evaluateFullRanking), so the same code measures both.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [root, task, shared, seedText] = process.argv.slice(2);
const seed = Number(seedText ?? 0);
const load = (name) => import(pathToFileURL(join(root, 'packages', name, 'dist', 'index.js')).href);
const data = await load('data');
const models = await load('models');
const { Trainer } = await load('trainer');
const { evaluateFullRanking } = await load('metrics');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function gowalla() {
  return data.givenSplit(
    await data.readUserItemLists(join(shared, 'gowalla', 'train.txt')),
    await data.readUserItemLists(join(shared, 'gowalla', 'test.txt')),
  );
}

/** `count` distinct training interactions drawn at random (a partial Fisher-Yates shuffle). */
function randomTrainingPairs(train, numUsers, count, random) {
  const users = new Int32Array(count);
  const items = new Int32Array(count);
  const { indptr, indices } = train;
  const order = Int32Array.from({ length: train.nnz }, (_, k) => k);
  for (let t = 0; t < count; t++) {
    const swap = t + random.nextInt(order.length - t);
    const k = order[swap];
    order[swap] = order[t];
    order[t] = k;
    let lo = 0;
    let hi = numUsers;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (indptr[mid] <= k) lo = mid;
      else hi = mid;
    }
    users[t] = lo;
    items[t] = indices[k];
  }
  return { users, items };
}

/** ML-1M's users and items, 100 batches of 512 training pairs, random 1280-d features. */
async function ml1mVisual() {
  const full = data.givenSplit(
    await data.readUserItemLists(join(shared, 'ml-1m', 'train.txt')),
    await data.readUserItemLists(join(shared, 'ml-1m', 'test.txt')),
  );
  const random = new data.Random(seed + 11);
  const { users, items } = randomTrainingPairs(full.train, full.numUsers, 100 * 512, random);
  const train = data.InteractionMatrix.fromPairs(full.numUsers, full.numItems, users, items);
  const dataset = { ...full, train, validation: null };
  const features = {
    data: Float32Array.from(
      { length: full.numItems * 1280 },
      () => Math.abs(random.nextGaussian()) / 30,
    ),
    dimension: 1280,
  };
  return { dataset, features };
}

async function trainRate(adversarial) {
  const dataset = await gowalla();
  const model = new models.MatrixFactorization(dataset, { embeddingSize: 64, seed });
  const trainer = await Trainer.create(model, dataset, { seed, batchSize: 512, threads: 2 });
  try {
    await trainer.runPhase({ epochs: 1, adversarial, validate: false });
    const r = await trainer.runPhase({ epochs: 2, adversarial, validate: false });
    return { triplesPerSecond: median(r.epochs.map((e) => e.triplesPerSecond)) };
  } finally {
    await trainer.close();
  }
}

async function evalSeconds() {
  const dataset = await gowalla();
  const model = new models.MatrixFactorization(dataset, { embeddingSize: 64, seed, initStd: 0.1 });
  const options = { cutoffs: [20], metrics: ['recall', 'ndcg'], threads: 2 };
  await evaluateFullRanking(model, dataset, options);
  const seconds = [];
  let engine = '';
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    const result = await evaluateFullRanking(model, dataset, options);
    seconds.push((performance.now() - t) / 1000);
    engine = result.protocol.engine;
  }
  return { seconds: median(seconds), engine };
}

async function visualStep(adversarial) {
  const { dataset, features } = await ml1mVisual();
  const model = new models.VisualBPR(
    dataset,
    features,
    { embeddingSize: 64, seed },
    { train: dataset.train },
  );
  const config = {
    seed,
    batchSize: 512,
    threads: 2,
    adversarial: { epsilon: 0.1, surfaces: ['itemFeatures'] },
  };
  const trainer = await Trainer.create(model, dataset, config);
  try {
    await trainer.runPhase({ epochs: 1, adversarial, validate: false });
    const r = await trainer.runPhase({ epochs: 2, adversarial, validate: false });
    const batches = Math.ceil(dataset.train.nnz / 512);
    return { stepMilliseconds: (1000 * median(r.epochs.map((e) => e.seconds))) / batches, batches };
  } finally {
    await trainer.close();
  }
}

/**
 * The AMR paper's Amazon scale (Table 1: 83,337 users, 299,555 items, 706,949 interactions,
 * 2048-d ResNet-50 features): synthetic interactions with a skewed item popularity, random
 * leave-one-out (cold items appear as in the paper), non-negative random 2048-d features
 * (float32, 2.45 GB). Trains VBPR for one epoch and AMR for one epoch (FGM on the features)
 * and reports each epoch's time and the process's peak RSS.
 */
async function amazonScale() {
  const numUsers = 83_337;
  const numItems = 299_555;
  const target = 706_949;
  const dimension = 2048;
  const random = new data.Random(seed + 17);
  const users = [];
  const items = [];
  const seen = new Set();
  // At least 5 interactions per user (the paper's filter), the rest spread at random. Every
  // item gets one interaction first (a shuffled order, as the paper's items all have one),
  // then items are drawn with a power-law popularity (item = N * u^3).
  const order = Int32Array.from({ length: numItems }, (_, i) => i);
  random.shuffle(order);
  let next = 0;
  let left = target - 5 * numUsers;
  for (let u = 0; u < numUsers; u++) {
    const extra =
      u === numUsers - 1
        ? left
        : Math.min(left, Math.floor(-Math.log(1 - random.nextFloat()) * 3.5));
    left -= extra;
    seen.clear();
    for (let k = 0; k < 5 + extra; k++) {
      let i;
      if (next < numItems && !seen.has(order[next])) i = order[next++];
      else
        do i = Math.min(numItems - 1, Math.floor(numItems * random.nextFloat() ** 3));
        while (seen.has(i));
      seen.add(i);
      users.push(u);
      items.push(i);
    }
  }
  const log = {
    source: 'synthetic Amazon scale',
    userIdMap: data.IdMap.inOrder(Array.from({ length: numUsers }, (_, u) => `u${u}`)),
    itemIdMap: data.IdMap.inOrder(Array.from({ length: numItems }, (_, i) => `i${i}`)),
    users: Int32Array.from(users),
    items: Int32Array.from(items),
    ratings: null,
    timestamps: null,
    length: users.length,
  };
  const t0 = performance.now();
  const note = (what) =>
    console.error(`amazon-scale: ${what} after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  note(`${users.length} interactions generated`);
  const dataset = data.leaveOneOut(log, { order: 'random', seed });
  note('split');
  // Built inside the call, so nothing here keeps the 2.45 GB input alive once the model
  // holds its own prepared copy.
  const randomFeatures = () => {
    let state = (seed + 1) >>> 0 || 1;
    const values = new Float32Array(dataset.numItems * dimension);
    for (let k = 0; k < values.length; k++) {
      // xorshift32: fast; the values' content does not matter for time and memory.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      values[k] = ((state >>> 0) / 2 ** 32) * 0.5;
    }
    return { data: values, dimension };
  };
  const model = new models.VisualBPR(
    dataset,
    randomFeatures(),
    { embeddingSize: 64, seed },
    { train: dataset.train },
  );
  const rssAfterModel = process.memoryUsage().rss;
  note(`model built, RSS ${Math.round(rssAfterModel / 2 ** 20)} MiB`);
  // Timed on 60 batches of 512 training pairs (the full model, users, items and features;
  // a random subset of the training interactions as the epoch), then scaled to a full epoch.
  const batches = 60;
  const { users: subsetUsers, items: subsetItems } = randomTrainingPairs(
    dataset.train,
    dataset.numUsers,
    batches * 512,
    new data.Random(seed + 23),
  );
  const subset = {
    ...dataset,
    train: data.InteractionMatrix.fromPairs(
      dataset.numUsers,
      dataset.numItems,
      subsetUsers,
      subsetItems,
    ),
    validation: null,
  };
  const trainer = await Trainer.create(model, subset, {
    seed,
    batchSize: 512,
    threads: 2,
    adversarial: { epsilon: 0.1 * model.featureTransform.rowNorm, surfaces: ['itemFeatures'] },
  });
  try {
    const vbpr = await trainer.runPhase({ epochs: 1, adversarial: false, validate: false });
    note('vbpr batches');
    const amr = await trainer.runPhase({ epochs: 1, adversarial: true, validate: false });
    note('amr batches');
    const perBatch = (phase) => phase.epochs[0].seconds / batches;
    const batchesPerEpoch = Math.ceil(dataset.train.nnz / 512);
    return {
      users: dataset.numUsers,
      items: dataset.numItems,
      trainInteractions: dataset.train.nnz,
      coldItems: dataset.coldStartItems.length,
      featureDimension: dimension,
      featureBytes: dataset.numItems * dimension * 4,
      timedBatches: batches,
      vbprBatchMilliseconds: 1000 * perBatch(vbpr),
      amrBatchMilliseconds: 1000 * perBatch(amr),
      batchesPerEpoch,
      vbprEpochSecondsEstimated: perBatch(vbpr) * batchesPerEpoch,
      amrEpochSecondsEstimated: perBatch(amr) * batchesPerEpoch,
      rssAfterModelMiB: Math.round(rssAfterModel / 2 ** 20),
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  } finally {
    await trainer.close();
  }
}

const tasks = {
  'train-bpr': () => trainRate(false),
  'train-apr': () => trainRate(true),
  eval: evalSeconds,
  'vbpr-step': () => visualStep(false),
  'amr-step': () => visualStep(true),
  'amazon-scale': amazonScale,
};
if (!tasks[task]) {
  console.error(`unknown task ${task}; tasks: ${Object.keys(tasks).join(', ')}`);
  process.exit(2);
}
console.log(JSON.stringify(await tasks[task]()));
