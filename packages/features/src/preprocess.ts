import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { ConfigError, DataFormatError } from '@advrec/data';
import type { ConfigIssue } from '@advrec/data';

/** How an image becomes a CNN input tensor. Defaults: torchvision's ImageNet preprocessing. */
export interface Preprocessing {
  /** The shorter side is resized to this (default 256). */
  readonly resize: number;
  /** Then a centred square crop of this size (default 224). */
  readonly crop: number;
  /** Resampling kernel (default `linear`, as torchvision's bilinear). */
  readonly kernel: 'nearest' | 'linear' | 'cubic' | 'lanczos3';
  /** Pixel values are multiplied by this first (default 1/255). */
  readonly scale: number;
  /** Per-channel mean subtracted after scaling (default ImageNet's, RGB). */
  readonly mean: readonly number[];
  /** Per-channel standard deviation divided by (default ImageNet's, RGB). */
  readonly std: readonly number[];
  /** Channels the model takes: 3 (RGB, default) or 1 (luminance). */
  readonly channels: 1 | 3;
  /** Tensor layout (default `nchw`). */
  readonly layout: 'nchw' | 'nhwc';
}

/** torchvision's ImageNet preprocessing (ResNet-50, MobileNetV2 and most zoo CNNs). */
export const IMAGENET_PREPROCESSING: Preprocessing = {
  resize: 256,
  crop: 224,
  kernel: 'linear',
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  channels: 3,
  layout: 'nchw',
};

/** Fills defaults and reports every invalid field at once. */
export function resolvePreprocessing(options: Partial<Preprocessing> = {}): Preprocessing {
  const p = { ...IMAGENET_PREPROCESSING, ...options };
  const issues: ConfigIssue[] = [];
  const positiveInt = (path: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1)
      issues.push({ path, message: `must be a positive integer, got ${v}` });
  };
  positiveInt('preprocessing.resize', p.resize);
  positiveInt('preprocessing.crop', p.crop);
  if (p.crop > p.resize)
    issues.push({
      path: 'preprocessing.crop',
      message: `must not exceed resize (${p.resize}), got ${p.crop}`,
    });
  if (!['nearest', 'linear', 'cubic', 'lanczos3'].includes(p.kernel))
    issues.push({
      path: 'preprocessing.kernel',
      message: `must be nearest, linear, cubic or lanczos3, got ${String(p.kernel)}`,
    });
  if (p.channels !== 1 && p.channels !== 3)
    issues.push({
      path: 'preprocessing.channels',
      message: `must be 1 or 3, got ${String(p.channels)}`,
    });
  if (p.layout !== 'nchw' && p.layout !== 'nhwc')
    issues.push({
      path: 'preprocessing.layout',
      message: `must be nchw or nhwc, got ${String(p.layout)}`,
    });
  for (const key of ['mean', 'std'] as const)
    if (
      !Array.isArray(p[key]) ||
      p[key].length !== p.channels ||
      p[key].some((v) => !Number.isFinite(v))
    )
      issues.push({
        path: `preprocessing.${key}`,
        message: `must be ${p.channels} finite numbers`,
      });
  if (p.std.some((v) => v === 0))
    issues.push({ path: 'preprocessing.std', message: 'must not contain 0' });
  if (!(Number.isFinite(p.scale) && p.scale > 0))
    issues.push({ path: 'preprocessing.scale', message: `must be > 0, got ${p.scale}` });
  if (issues.length > 0) throw new ConfigError(issues);
  return p;
}

/** Floats per preprocessed image. */
export function tensorSize(p: Preprocessing): number {
  return p.channels * p.crop * p.crop;
}

/**
 * Decodes an image file (JPEG, PNG, WebP, ...; the format is detected from the content,
 * not the extension) and writes its preprocessed tensor into `out` at `offset`:
 * shorter side resized to `resize`, centre crop `crop`, alpha dropped, sRGB (or
 * luminance), scaled, normalised per channel, NCHW (or NHWC).
 * @throws {@link DataFormatError} naming the file when it cannot be read or decoded.
 */
export async function preprocessImage(
  file: string,
  p: Preprocessing,
  out: Float32Array,
  offset = 0,
): Promise<void> {
  let data: Buffer;
  let info: sharp.OutputInfo;
  try {
    // One read: the header for the geometry, then the decode, from the same bytes.
    const bytes = await readFile(file);
    const metadata = await sharp(bytes, { failOn: 'error' }).metadata();
    const width = metadata.autoOrient?.width ?? metadata.width;
    const height = metadata.autoOrient?.height ?? metadata.height;
    if (!width || !height) throw new Error('no image dimensions');
    // torchvision Resize(int): the shorter side becomes `resize`, the longer is floored.
    const short = Math.min(width, height);
    const w = width <= height ? p.resize : Math.floor((p.resize * width) / short);
    const h = height < width ? p.resize : Math.floor((p.resize * height) / short);
    const left = Math.round((w - p.crop) / 2);
    const top = Math.round((h - p.crop) / 2);
    let pipeline = sharp(bytes, { failOn: 'error' }).autoOrient().removeAlpha();
    pipeline = p.channels === 3 ? pipeline.toColourspace('srgb') : pipeline.grayscale();
    ({ data, info } = await pipeline
      .resize(w, h, { kernel: p.kernel, fit: 'fill' })
      .extract({ left, top, width: p.crop, height: p.crop })
      .raw()
      .toBuffer({ resolveWithObject: true }));
  } catch (cause) {
    if (DataFormatError.isInstance(cause)) throw cause;
    throw new DataFormatError(
      { file },
      'a readable JPEG, PNG or WebP image',
      (cause as Error).message,
      { cause },
    );
  }
  if (info.channels !== p.channels)
    throw new DataFormatError(
      { file },
      `${p.channels} colour channels after conversion`,
      `${info.channels}`,
    );
  const c = p.channels;
  const plane = p.crop * p.crop;
  for (let k = 0; k < plane; k++) {
    for (let ch = 0; ch < c; ch++) {
      const v = (data[k * c + ch]! * p.scale - p.mean[ch]!) / p.std[ch]!;
      out[offset + (p.layout === 'nchw' ? ch * plane + k : k * c + ch)] = v;
    }
  }
}
