import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DataFormatError, Random, readFeatureMatrix } from '@advrec/data';
import { exposeTensor } from '@advrec/onnx';
import { sharedDataDir } from '@advrec/testing';
import {
  FeatureSession,
  IMAGENET_PREPROCESSING,
  extractFeatures,
  mergeFeatureShards,
  planFeatureShards,
  preprocessImage,
  resolvePreprocessing,
  tensorSize,
} from './index.js';
import type { ImageEntry } from './index.js';
import { buildTinyCnn, tinyCnnFeatures } from './test-support/tiny-cnn.js';

const here = dirname(fileURLToPath(import.meta.url));
const posters = join(sharedDataDir(), 'ml-1m', 'posters');
const mobilenet = join(
  sharedDataDir(),
  '..',
  'models',
  'mobilenetv2-12-int8',
  'mobilenetv2-12-int8.onnx',
);
const tiny = buildTinyCnn();
const tinyPreprocessing = { resize: 18, crop: 16 } as const;
let dir: string;
let tinyModel: string;
let images: ImageEntry[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'advrec-features-'));
  tinyModel = join(dir, 'tiny.onnx');
  await writeFile(tinyModel, tiny.bytes);
  const random = new Random(3);
  images = [];
  for (let k = 0; k < 10; k++) {
    const width = 20 + random.nextInt(30);
    const height = 20 + random.nextInt(30);
    const pixels = Buffer.from(
      Array.from({ length: width * height * 3 }, () => random.nextInt(256)),
    );
    const file = join(dir, `item${k}.${k % 3 === 0 ? 'png' : 'jpg'}`);
    const image = sharp(pixels, { raw: { width, height, channels: 3 } });
    await (k % 3 === 0 ? image.png() : image.jpeg()).toFile(file);
    images.push({ itemId: `i${k}`, file });
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('preprocessing', () => {
  it('normalises a solid colour exactly, drops alpha, and makes grey images RGB', async () => {
    const file = join(dir, 'solid.png');
    await sharp({
      create: {
        width: 40,
        height: 30,
        channels: 4,
        background: { r: 200, g: 100, b: 50, alpha: 0.5 },
      },
    })
      .png()
      .toFile(file);
    const p = resolvePreprocessing({ resize: 20, crop: 16 });
    const out = new Float32Array(tensorSize(p));
    await preprocessImage(file, p, out);
    const expected = [200, 100, 50].map((v, c) => (v / 255 - p.mean[c]!) / p.std[c]!);
    // Within one grey level (the PNG round trip with alpha may round a channel by one).
    for (let c = 0; c < 3; c++)
      for (let k = 0; k < 256; k++)
        expect(Math.abs(out[c * 256 + k]! - expected[c]!)).toBeLessThan(1.01 / 255 / p.std[c]!);
    const grey = join(dir, 'grey.jpg');
    await sharp({
      create: { width: 30, height: 30, channels: 3, background: { r: 90, g: 90, b: 90 } },
    })
      .greyscale()
      .jpeg()
      .toFile(grey);
    await preprocessImage(grey, p, out);
    expect(out[0]! * p.std[0]! + p.mean[0]!).toBeCloseTo(out[256]! * p.std[1]! + p.mean[1]!, 2);
  });

  it('detects the format by content: the PNG poster named .jpg decodes', async () => {
    const p = resolvePreprocessing();
    const out = new Float32Array(tensorSize(p));
    await preprocessImage(join(posters, '3575.jpg'), p, out);
    expect(out.some((v) => v !== 0)).toBe(true);
    expect(out.every(Number.isFinite)).toBe(true);
  });

  it('reports every bad preprocessing field at once', () => {
    let error: unknown;
    try {
      resolvePreprocessing({
        resize: 100,
        crop: 224,
        mean: [0.5],
        std: [0, 1, 1],
        kernel: 'box' as 'linear',
      });
    } catch (e) {
      error = e;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual([
      'preprocessing.crop',
      'preprocessing.kernel',
      'preprocessing.mean',
      'preprocessing.std',
    ]);
  });
});

describe('extraction with a tiny CNN built here', () => {
  it('gives the hand-computed pooled intermediate tensor and the same vector as a direct onnxruntime run', async () => {
    const output = join(dir, 'tiny.npy');
    const result = await extractFeatures({
      model: tinyModel,
      images,
      output,
      tensor: 'features',
      preprocessing: tinyPreprocessing,
      batchSize: 4,
    });
    expect(result.manifest.itemIds).toEqual(images.map((i) => i.itemId));
    expect(result.manifest.dimension).toBe(4);
    expect(result.manifest.pooling).toBe('mean over 8x8');
    expect(result.manifest.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    const matrix = await readFeatureMatrix(output);
    expect([matrix.rows, matrix.dimension]).toEqual([10, 4]);
    const p = resolvePreprocessing(tinyPreprocessing);
    const input = new Float32Array(images.length * tensorSize(p));
    for (let k = 0; k < images.length; k++)
      await preprocessImage(images[k]!.file, p, input, k * tensorSize(p));
    const session = await FeatureSession.open(tiny.bytes, 'tiny.onnx', {
      tensor: 'features',
      preprocessing: tinyPreprocessing,
    });
    const direct = await session.run(input, images.length);
    await session.release();
    for (let k = 0; k < images.length; k++) {
      const byHand = tinyCnnFeatures(tiny, input, k * tensorSize(p));
      for (let f = 0; f < 4; f++) {
        expect(Math.abs(matrix.data[k * 4 + f]! - byHand[f]!)).toBeLessThan(1e-4);
        expect(Math.abs(matrix.data[k * 4 + f]! - direct[k * 4 + f]!)).toBeLessThan(1e-4);
      }
    }
    expect(existsSync(`${output}.partial`)).toBe(false);
  });

  it('records unreadable and truncated images in the manifest and skips them (never zero-filled)', async () => {
    const truncated = join(dir, 'truncated.jpg');
    const bytes = await readFile(images[1]!.file);
    await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const text = join(dir, 'notes.jpg');
    await writeFile(text, 'not an image\n');
    const list = [
      images[0]!,
      { itemId: 'bad1', file: truncated },
      images[2]!,
      { itemId: 'bad2', file: text },
      { itemId: 'bad3', file: join(dir, 'missing.jpg') },
    ];
    const output = join(dir, 'bad.npy');
    const result = await extractFeatures({
      model: tinyModel,
      images: list,
      output,
      tensor: 'features',
      preprocessing: tinyPreprocessing,
      batchSize: 2,
    });
    expect(result.manifest.itemIds).toEqual(['i0', 'i2']);
    expect(result.manifest.failed.map((f) => f.itemId)).toEqual(['bad1', 'bad2', 'bad3']);
    for (const f of result.manifest.failed) expect(f.reason).toContain(f.file);
    const matrix = await readFeatureMatrix(output);
    expect(matrix.rows).toBe(2);
    const alone = await extractFeatures({
      model: tinyModel,
      images: [images[0]!, images[2]!],
      output: join(dir, 'good.npy'),
      tensor: 'features',
      preprocessing: tinyPreprocessing,
    });
    expect(alone.manifest.rows).toBe(2);
    expect(matrix.data).toEqual((await readFeatureMatrix(join(dir, 'good.npy'))).data);
  });

  it('names the file for a missing model, a non-ONNX file and a tensor the graph does not have', async () => {
    const base = { images, output: join(dir, 'x.npy'), preprocessing: tinyPreprocessing };
    await expect(extractFeatures({ ...base, model: join(dir, 'nope.onnx') })).rejects.toThrow(
      /nope\.onnx/,
    );
    const junk = join(dir, 'junk.onnx');
    await writeFile(junk, 'hello');
    await expect(extractFeatures({ ...base, model: junk })).rejects.toThrow(DataFormatError);
    await expect(extractFeatures({ ...base, model: tinyModel, tensor: '627' })).rejects.toThrow(
      /tiny\.onnx: expected a tensor named "627"/,
    );
    await expect(
      extractFeatures({
        ...base,
        model: tinyModel,
        preprocessing: { ...tinyPreprocessing, channels: 1, mean: [0.5], std: [0.5] },
      }),
    ).rejects.toThrow(/tiny\.onnx: expected a model taking image as float32 \[10, 1, 16, 16\]/);
  });

  it('an aborted run resumes and writes the same bytes as an uninterrupted one; float16 output too', async () => {
    const options = {
      model: tinyModel,
      images,
      tensor: 'features',
      preprocessing: tinyPreprocessing,
      batchSize: 3,
    } as const;
    const straight = join(dir, 'straight.npy');
    await extractFeatures({ ...options, output: straight });
    const resumed = join(dir, 'resumed.npy');
    const controller = new AbortController();
    let batches = 0;
    await expect(
      extractFeatures({
        ...options,
        output: resumed,
        signal: controller.signal,
        onProgress: () => {
          if (++batches === 2) controller.abort();
        },
      }),
    ).rejects.toThrow(/aborted after 6 of 10 images/);
    expect(existsSync(resumed)).toBe(false);
    const second = await extractFeatures({ ...options, output: resumed });
    expect(second.resumedFrom).toBe(6);
    expect(second.processedNow).toBe(4);
    expect(await readFile(resumed)).toEqual(await readFile(straight));
    const half = join(dir, 'half.npy');
    await extractFeatures({ ...options, output: half, dtype: 'float16' });
    const h = await readFeatureMatrix(half);
    const f = await readFeatureMatrix(straight);
    expect(h.fileType).toBe('float16');
    for (let k = 0; k < f.data.length; k++)
      expect(Math.abs(h.data[k]! - f.data[k]!)).toBeLessThan(
        2e-3 * Math.max(1, Math.abs(f.data[k]!)),
      );
  });

  it('shards of whole batches, extracted apart and merged, give the bytes of one run (float32 and float16, with a failed image)', async () => {
    expect(planFeatureShards(10, 3, 3)).toEqual([
      { index: 0, start: 0, end: 6 },
      { index: 1, start: 6, end: 9 },
      { index: 2, start: 9, end: 10 },
    ]);
    expect(planFeatureShards(4, 8, 3)).toEqual([
      { index: 0, start: 0, end: 3 },
      { index: 1, start: 3, end: 4 },
    ]);
    expect(() => planFeatureShards(10, 0)).toThrow(/shards must be a positive integer/);
    const broken = join(dir, 'broken.jpg');
    await writeFile(broken, 'not an image');
    const list = [...images.slice(0, 4), { itemId: 'broken', file: broken }, ...images.slice(4)];
    const options = {
      model: tinyModel,
      tensor: 'features',
      preprocessing: tinyPreprocessing,
      batchSize: 3,
    } as const;
    for (const dtype of ['float32', 'float16'] as const) {
      const single = join(dir, `single-${dtype}.npy`);
      await extractFeatures({ ...options, images: list, output: single, dtype });
      const shardFiles: string[] = [];
      for (const shard of planFeatureShards(list.length, 3, options.batchSize)) {
        const file = join(dir, `shard-${dtype}-${shard.index}.npy`);
        await extractFeatures({
          ...options,
          images: list.slice(shard.start, shard.end),
          output: file,
        });
        shardFiles.push(file);
      }
      const merged = join(dir, `merged-${dtype}.npy`);
      const { manifest } = await mergeFeatureShards(shardFiles, merged, { dtype });
      expect(manifest.failed.map((f) => f.file)).toEqual([broken]);
      expect(await readFile(merged)).toEqual(await readFile(single));
      expect(await readFile(`${merged}.manifest.json`, 'utf8')).toBe(
        await readFile(`${single}.manifest.json`, 'utf8'),
      );
    }
    // A shard of another extraction (another tensor) is refused, naming its manifest.
    const other = join(dir, 'other-shard.npy');
    await extractFeatures({
      ...options,
      tensor: 'logits',
      images: images.slice(0, 3),
      output: other,
    });
    await expect(
      mergeFeatureShards([join(dir, 'shard-float32-0.npy'), other], join(dir, 'bad.npy')),
    ).rejects.toThrow(/other-shard\.npy\.manifest\.json.*different.*tensor/);
    await expect(mergeFeatureShards([join(dir, 'nope.npy')], join(dir, 'bad.npy'))).rejects.toThrow(
      /nope\.npy\.manifest\.json/,
    );
  });

  it('a flipped byte in the .partial file is never copied into the output: the bad batch is redone', async () => {
    const options = {
      model: tinyModel,
      images,
      tensor: 'features',
      preprocessing: tinyPreprocessing,
      batchSize: 3,
    } as const;
    const straight = join(dir, 'flip-reference.npy');
    await extractFeatures({ ...options, output: straight });
    const output = join(dir, 'flipped.npy');
    const controller = new AbortController();
    let batches = 0;
    await expect(
      extractFeatures({
        ...options,
        output,
        signal: controller.signal,
        onProgress: () => {
          if (++batches === 2) controller.abort();
        },
      }),
    ).rejects.toThrow(/aborted after 6 of 10 images/);
    // Flip one bit in the second batch's rows (rows 3..5).
    const partial = await readFile(`${output}.partial`);
    const rowBytes = partial.length / 6;
    partial[Math.floor(4.5 * rowBytes)]! ^= 0x40;
    await writeFile(`${output}.partial`, partial);
    const resumed = await extractFeatures({ ...options, output });
    expect(resumed.resumedFrom).toBe(3); // the first batch verified, the second is redone
    expect(await readFile(output)).toEqual(await readFile(straight));
  });

  it('a SIGKILLed extraction resumes and produces the same file', async () => {
    const list = join(dir, 'images.json');
    await writeFile(list, JSON.stringify(images));
    const output = join(dir, 'killed.npy');
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(here, 'test-support', 'kill-child.ts'),
        tinyModel,
        list,
        output,
        '2',
      ],
      {
        encoding: 'utf8',
      },
    );
    expect(child.signal).toBe('SIGKILL');
    expect(existsSync(output)).toBe(false);
    expect(existsSync(`${output}.partial.json`)).toBe(true);
    const resumed = await extractFeatures({
      model: tinyModel,
      images,
      output,
      tensor: 'features',
      preprocessing: tinyPreprocessing,
      batchSize: 3,
      threads: 1,
    });
    expect(resumed.resumedFrom).toBe(6);
    const reference = join(dir, 'reference.npy');
    await extractFeatures({
      model: tinyModel,
      images,
      output: reference,
      tensor: 'features',
      preprocessing: tinyPreprocessing,
      batchSize: 3,
    });
    expect(await readFile(output)).toEqual(await readFile(reference));
  }, 60_000);
});

describe('the shared MobileNetV2 on real posters', () => {
  it('extracts 1280-d pooled features of tensor 627, equal to a direct onnxruntime run on the same tensors', async () => {
    const list = ['1', '260', '3575', '2571', '1196'].map((id) => ({
      itemId: id,
      file: join(posters, `${id}.jpg`),
    }));
    const output = join(dir, 'posters.npy');
    const result = await extractFeatures({
      model: mobilenet,
      images: list,
      output,
      tensor: '627',
      batchSize: 2,
    });
    expect(result.manifest.dimension).toBe(1280);
    expect(result.manifest.pooling).toBe('mean over 7x7');
    expect(result.manifest.failed).toEqual([]);
    expect(result.manifest.preprocessing).toEqual(IMAGENET_PREPROCESSING);
    const matrix = await readFeatureMatrix(output);
    const p = resolvePreprocessing();
    const input = new Float32Array(list.length * tensorSize(p));
    for (let k = 0; k < list.length; k++)
      await preprocessImage(list[k]!.file, p, input, k * tensorSize(p));
    const session = await FeatureSession.open(await readFile(mobilenet), mobilenet, {
      tensor: '627',
    });
    const direct = await session.run(input, list.length);
    await session.release();
    let maxDiff = 0;
    for (let k = 0; k < direct.length; k++)
      maxDiff = Math.max(maxDiff, Math.abs(direct[k]! - matrix.data[k]!));
    expect(maxDiff).toBeLessThan(1e-4);
    // ReLU6 activations, averaged: in [0, 6], and different posters differ.
    expect(matrix.data.every((v) => v >= 0 && v <= 6)).toBe(true);
    expect(matrix.data.subarray(0, 1280)).not.toEqual(matrix.data.subarray(1280, 2560));
    // Exposing a tensor leaves the original graph intact: logits still come out.
    expect(exposeTensor(await readFile(mobilenet), 'output', mobilenet).length).toBe(
      (await readFile(mobilenet)).length,
    );
  }, 60_000);
});
