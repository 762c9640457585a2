/**
 * `pnpm bench features`: the whole extraction pipeline (decode with sharp, preprocess,
 * onnxruntime, pooling, resumable .npy writing) against onnxruntime alone on already
 * preprocessed tensors, measured in the same run, for two extractors:
 * - ResNet-50 v1 (the mission's default extractor; the model zoo's graph and tensor names,
 *   built by `buildResNet50` with random weights since no pretrained file can be downloaded
 *   here; same FLOPs, so the same speed), pooled layer `resnetv17_pool1_fwd` (2048-d), on the
 *   first 384 ML-1M posters;
 * - the shared MobileNetV2 (int8, tensor `627` pooled to 1280-d) on every poster.
 * Target: the pipeline at >= 80% of onnxruntime's own rate (ResNet-50).
 */
import { readFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FeatureSession,
  RESNET50_V1,
  buildResNet50,
  extractFeatures,
  preprocessImage,
  resolvePreprocessing,
  tensorSize,
} from '@advrec/features';
import sharp from 'sharp';
import { median, type BenchContext } from '../context.js';
import type { BenchAbout } from '../context.js';

/** What this benchmark measures and the figures it writes (the bench README's table). */
export const about: BenchAbout = {
  kind: 'perf',
  what: 'the extraction pipeline (sharp decode, preprocessing, inference, pooling, .npy) vs onnxruntime alone on preprocessed tensors, same run: ResNet-50 v1 (the model zoo graph, random weights, `resnetv17_pool1_fwd`) on 384 posters, and the shared MobileNetV2 (tensor 627 pooled) on every poster',
  figures:
    'per extractor `imagesPerSecond`, `onnxruntimeAloneImagesPerSecond`, `pipelineOverOnnxruntime` (target 0.8 for ResNet-50), preprocessing and decoding alone',
};

const BATCH = 32;

interface Extractor {
  readonly label: string;
  readonly model: string;
  readonly tensor: string;
  readonly images: readonly { itemId: string; file: string }[];
  /** Images in each timed onnxruntime-alone round. */
  readonly ortImages: number;
}

/** The pipeline and its parts for one extractor (medians over rounds, ratios from this run). */
async function measure(
  extractor: Extractor,
  directory: string,
  log: (line: string) => void,
): Promise<Record<string, unknown>> {
  const { model, tensor, images } = extractor;
  const threads = availableParallelism();
  // onnxruntime alone: the same batches of already-preprocessed tensors.
  const p = resolvePreprocessing();
  const sample = images.slice(0, extractor.ortImages);
  const input = new Float32Array(sample.length * tensorSize(p));
  for (let k = 0; k < sample.length; k++)
    await preprocessImage(sample[k]!.file, p, input, k * tensorSize(p));
  const session = await FeatureSession.open(await readFile(model), model, { tensor, threads });
  await session.run(input.subarray(0, BATCH * tensorSize(p)), BATCH); // warm-up
  const ortRates: number[] = [];
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    for (let b = 0; b < sample.length / BATCH; b++)
      await session.run(
        input.subarray(b * BATCH * tensorSize(p), (b + 1) * BATCH * tensorSize(p)),
        BATCH,
      );
    ortRates.push(sample.length / ((performance.now() - t0) / 1000));
    log(`${extractor.label}: onnxruntime alone ${ortRates.at(-1)!.toFixed(1)} images/s`);
  }
  await session.release();

  // What the CPU can do besides inference: preprocessing alone (decode, resize, crop,
  // normalise) and bare decoding alone, each on all cores. When preprocessing and inference
  // share the same cores, the pipeline's rate is at most 1 / (1 / prep + 1 / ort).
  const parallel = async (
    count: number,
    work: (k: number) => Promise<unknown>,
  ): Promise<number> => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < count) await work(next++);
      }),
    );
    return count / ((performance.now() - t0) / 1000);
  };
  const probe = images.slice(0, 16 * BATCH);
  const bytes = await Promise.all(probe.map((image) => readFile(image.file)));
  const scratch = new Float32Array(tensorSize(p));
  const prepRates: number[] = [];
  const decodeRates: number[] = [];
  for (let round = 0; round < 3; round++) {
    prepRates.push(
      await parallel(probe.length, (k) => preprocessImage(probe[k]!.file, p, scratch)),
    );
    decodeRates.push(await parallel(probe.length, (k) => sharp(bytes[k]!).raw().toBuffer()));
    log(
      `preprocessing alone: ${prepRates.at(-1)!.toFixed(1)} images/s; sharp decode alone: ${decodeRates.at(-1)!.toFixed(1)} images/s`,
    );
  }

  // The whole pipeline, twice (both full extractions; the median is the figure).
  const pipelineRates: number[] = [];
  let last: Awaited<ReturnType<typeof extractFeatures>> | null = null;
  for (let round = 0; round < 2; round++) {
    last = await extractFeatures({
      model,
      images,
      output: join(directory, `features-${round}.npy`),
      tensor,
      batchSize: BATCH,
      threads,
      onProgress: (q) => {
        if (q.done % (BATCH * 40) === 0)
          log(`pipeline ${q.done}/${q.total}: ${q.imagesPerSecond.toFixed(1)} images/s`);
      },
    });
    pipelineRates.push(last.imagesPerSecond);
    log(
      `${extractor.label}: pipeline run ${round}: ${last.imagesPerSecond.toFixed(1)} images/s, ${last.seconds.toFixed(1)} s`,
    );
  }
  const ort = median(ortRates);
  const pipeline = median(pipelineRates);
  return {
    model: extractor.label,
    images: images.length,
    failed: last!.manifest.failed.length,
    failures: last!.manifest.failed,
    dimension: last!.manifest.dimension,
    batchSize: BATCH,
    threads,
    imagesPerSecond: Number(pipeline.toFixed(1)),
    onnxruntimeAloneImagesPerSecond: Number(ort.toFixed(1)),
    pipelineOverOnnxruntime: Number((pipeline / ort).toFixed(3)),
    preprocessingAloneImagesPerSecond: Number(median(prepRates).toFixed(1)),
    sharpDecodeAloneImagesPerSecond: Number(median(decodeRates).toFixed(1)),
    // Upper bounds of pipeline / onnxruntime when both share the cores.
    boundWithThisPreprocessing: Number((median(prepRates) / (median(prepRates) + ort)).toFixed(3)),
    boundWithFreeResizeAndNormalisation: Number(
      (median(decodeRates) / (median(decodeRates) + ort)).toFixed(3),
    ),
    samples: {
      pipelineImagesPerSecond: pipelineRates,
      onnxruntimeImagesPerSecond: ortRates,
      preprocessingImagesPerSecond: prepRates,
      sharpDecodeImagesPerSecond: decodeRates,
    },
  };
}

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const postersDir = join(sharedData, 'ml-1m', 'posters');
  const mobilenet = join(
    sharedData,
    '..',
    'models',
    'mobilenetv2-12-int8',
    'mobilenetv2-12-int8.onnx',
  );
  const files = (await readdir(postersDir)).filter((f) => f.endsWith('.jpg'));
  files.sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
  const images = files.map((f) => ({ itemId: f.slice(0, -4), file: join(postersDir, f) }));
  const directory = await mkdtemp(join(tmpdir(), 'advrec-bench-features-'));
  try {
    const resnet = join(directory, 'resnet50-v1-random.onnx');
    await writeFile(resnet, buildResNet50({ seed: 1 }));
    const resnet50 = await measure(
      {
        label: `ResNet-50 v1 (the model zoo's resnet50-v1-7 graph, random weights built by buildResNet50), tensor ${RESNET50_V1.pooledTensor} [N,2048,1,1]`,
        model: resnet,
        tensor: RESNET50_V1.pooledTensor,
        images: images.slice(0, 384),
        ortImages: 4 * BATCH,
      },
      directory,
      log,
    );
    const mobilenetv2 = await measure(
      {
        label: 'mobilenetv2-12-int8.onnx (shared), tensor 627 [N,1280,7,7] averaged over 7x7',
        model: mobilenet,
        tensor: '627',
        images,
        ortImages: 8 * BATCH,
      },
      directory,
      log,
    );
    return {
      resnet50,
      mobilenetv2,
      note: 'the pipeline decodes with sharp (libvips threads) while onnxruntime runs the previous batch, on the same 2 cores; the bounds are what sharing the cores allows: 1 / (1 / preprocessing + 1 / onnxruntime) over onnxruntime alone, and the same with bare decoding in place of preprocessing. ResNet-50 costs about 4 GFLOPs an image, 13x MobileNetV2, so decoding is a small share of its pipeline.',
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
