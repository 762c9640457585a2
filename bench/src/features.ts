/**
 * `pnpm bench features`: extracts features of every ML-1M poster with the shared
 * MobileNetV2 (int8, tensor `627` pooled to 1280-d), the whole pipeline (decode with sharp,
 * preprocess, onnxruntime, pooling, resumable .npy writing), and measures onnxruntime alone
 * on already-preprocessed tensors in the same run. Target: the pipeline at >= 80% of
 * onnxruntime's own rate.
 */
import { readFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FeatureSession,
  extractFeatures,
  preprocessImage,
  resolvePreprocessing,
  tensorSize,
} from '@advrec/features';
import sharp from 'sharp';
import { median, type BenchContext } from './context.js';

const BATCH = 32;

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const postersDir = join(sharedData, 'ml-1m', 'posters');
  const model = join(sharedData, '..', 'models', 'mobilenetv2-12-int8', 'mobilenetv2-12-int8.onnx');
  const files = (await readdir(postersDir)).filter((f) => f.endsWith('.jpg'));
  files.sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
  const images = files.map((f) => ({ itemId: f.slice(0, -4), file: join(postersDir, f) }));
  const threads = availableParallelism();
  const directory = await mkdtemp(join(tmpdir(), 'advrec-bench-features-'));
  try {
    // onnxruntime alone: the same batches of already-preprocessed tensors.
    const p = resolvePreprocessing();
    const sample = images.slice(0, 8 * BATCH);
    const input = new Float32Array(sample.length * tensorSize(p));
    for (let k = 0; k < sample.length; k++)
      await preprocessImage(sample[k]!.file, p, input, k * tensorSize(p));
    const session = await FeatureSession.open(await readFile(model), model, {
      tensor: '627',
      threads,
    });
    await session.run(input, BATCH); // warm-up
    const ortRates: number[] = [];
    for (let round = 0; round < 3; round++) {
      const t0 = performance.now();
      for (let b = 0; b < sample.length / BATCH; b++)
        await session.run(
          input.subarray(b * BATCH * tensorSize(p), (b + 1) * BATCH * tensorSize(p)),
          BATCH,
        );
      ortRates.push(sample.length / ((performance.now() - t0) / 1000));
      log(`onnxruntime alone: ${ortRates.at(-1)!.toFixed(1)} images/s`);
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

    // The whole pipeline, twice (the second run is the figure; both are full extractions).
    const pipelineRates: number[] = [];
    let last: Awaited<ReturnType<typeof extractFeatures>> | null = null;
    for (let round = 0; round < 2; round++) {
      const output = join(directory, `posters-${round}.npy`);
      last = await extractFeatures({
        model,
        images,
        output,
        tensor: '627',
        batchSize: BATCH,
        threads,
        onProgress: (q) => {
          if (q.done % (BATCH * 40) === 0)
            log(`pipeline ${q.done}/${q.total}: ${q.imagesPerSecond.toFixed(1)} images/s`);
        },
      });
      pipelineRates.push(last.imagesPerSecond);
      log(
        `pipeline run ${round}: ${last.imagesPerSecond.toFixed(1)} images/s, ${last.seconds.toFixed(1)} s`,
      );
    }
    const ort = median(ortRates);
    const pipeline = median(pipelineRates);
    return {
      model: 'mobilenetv2-12-int8.onnx (shared), tensor 627 [N,1280,7,7] averaged over 7x7',
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
      boundWithThisPreprocessing: Number(
        (median(prepRates) / (median(prepRates) + ort)).toFixed(3),
      ),
      boundWithFreeResizeAndNormalisation: Number(
        (median(decodeRates) / (median(decodeRates) + ort)).toFixed(3),
      ),
      samples: {
        pipelineImagesPerSecond: pipelineRates,
        onnxruntimeImagesPerSecond: ortRates,
        preprocessingImagesPerSecond: prepRates,
        sharpDecodeImagesPerSecond: decodeRates,
      },
      note: 'the pipeline decodes with sharp (libvips threads) while onnxruntime runs the previous batch, on the same 2 cores; the bounds are what sharing the cores allows: 1 / (1 / preprocessing + 1 / onnxruntime) over onnxruntime alone, and the same with bare decoding in place of preprocessing',
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
