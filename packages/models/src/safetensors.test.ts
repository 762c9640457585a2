import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  MatrixFactorization,
  VisualBPR,
  readCheckpoint,
  restoreModel,
  writeCheckpoint,
} from './index.js';
import { createTable } from './tables.js';

/**
 * An independent safetensors reader, written from the format's specification only (not from
 * advrec's writer): u64 little-endian header size N, N bytes of JSON (tensor name -> dtype,
 * shape, data_offsets relative to the byte buffer; optional `__metadata__` string map), then
 * the byte buffer. It checks what the reference implementation checks: the header is a JSON
 * object, offsets are in bounds, contiguous and cover the whole buffer, and each tensor's
 * size is its shape's product times the dtype's width.
 */
function readSafetensorsFromSpec(bytes: Buffer): {
  metadata: Record<string, string>;
  tensors: Map<string, { shape: number[]; values: Float32Array }>;
} {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const buffer = bytes.subarray(8 + n);
  const metadata = (header['__metadata__'] ?? {}) as Record<string, string>;
  for (const value of Object.values(metadata)) expect(typeof value).toBe('string');
  const entries = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, e]) => ({
      name,
      ...(e as { dtype: string; shape: number[]; data_offsets: [number, number] }),
    }))
    .sort((a, b) => a.data_offsets[0] - b.data_offsets[0]);
  let cursor = 0;
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const e of entries) {
    expect(e.dtype).toBe('F32');
    const [begin, end] = e.data_offsets;
    expect(begin).toBe(cursor); // contiguous, no holes
    expect(end - begin).toBe(e.shape.reduce((a, b) => a * b, 1) * 4);
    const values = new Float32Array(end - begin);
    const copy = Buffer.from(buffer.subarray(begin, end));
    for (let k = 0; k < values.length / 4; k++) values[k] = copy.readFloatLE(4 * k);
    tensors.set(e.name, { shape: e.shape, values: values.subarray(0, (end - begin) / 4) });
    cursor = end;
  }
  expect(cursor).toBe(buffer.length); // the tensors cover the whole buffer
  return { metadata, tensors };
}

describe('safetensors checkpoints', () => {
  it('a checkpoint written here is read by an independent reader from the spec, and back by advrec', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'advrec-safetensors-'));
    try {
      const model = new MatrixFactorization(
        { numUsers: 7, numItems: 9 },
        { embeddingSize: 5, seed: 3, initStd: 0.3, itemBias: true },
      );
      model.itemBias!.values.forEach((_, i, b) => (b[i] = i / 10));
      const state = createTable('userEmbeddings.adagrad', 'user', 7, 5);
      state.values.fill(0.25);
      const file = join(directory, 'model.safetensors');
      await writeCheckpoint(file, model, [state], { epoch: 12, datasetFingerprint: 'abc' });
      const bytes = await readFile(file);
      expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0);
      const { metadata, tensors } = readSafetensorsFromSpec(bytes);
      expect(metadata['format']).toBe('advrec');
      expect(metadata['advrec.modelName']).toBe('mf');
      expect(JSON.parse(metadata['advrec.config']!)).toEqual(model.config);
      expect(JSON.parse(metadata['advrec.metadata']!)).toEqual({
        epoch: 12,
        datasetFingerprint: 'abc',
      });
      expect([...tensors.keys()]).toEqual([
        'userEmbeddings',
        'itemEmbeddings',
        'itemBias',
        'userEmbeddings.adagrad',
      ]);
      expect(tensors.get('userEmbeddings')!.shape).toEqual([7, 5]);
      for (const table of [...model.tables, state])
        expect(tensors.get(table.name)!.values).toEqual(table.values);
      // And back: every advrec command that reads checkpoints reads this file.
      const read = await readCheckpoint(file);
      expect(read.metadata).toEqual({ epoch: 12, datasetFingerprint: 'abc' });
      expect(read.extraTables.map((t) => t.name)).toEqual(['userEmbeddings.adagrad']);
      const restored = restoreModel(read.model) as MatrixFactorization;
      for (let k = 0; k < model.tables.length; k++)
        expect(restored.tables[k]!.values).toEqual(model.tables[k]!.values);
      expect(restored.score(Int32Array.of(2), Int32Array.of(4))[0]).toBe(
        model.score(Int32Array.of(2), Int32Array.of(4))[0],
      );
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('round-trips VBPR (its fixed feature table and projection) and refuses damaged files, naming them', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'advrec-safetensors-'));
    try {
      const features = Float32Array.from({ length: 6 * 4 }, (_, k) => Math.sin(k));
      const model = new VisualBPR(
        { numUsers: 5, numItems: 6 },
        { data: features, dimension: 4 },
        { embeddingSize: 3, seed: 2 },
      );
      const file = join(directory, 'vbpr.safetensors');
      await writeCheckpoint(file, model);
      const restored = restoreModel((await readCheckpoint(file)).model);
      const users = Int32Array.of(0, 1, 4);
      const items = Int32Array.of(5, 2, 0);
      expect(restored.score(users, items)).toEqual(model.score(users, items));
      const bytes = await readFile(file);
      const truncated = join(directory, 'truncated.safetensors');
      await writeFile(truncated, bytes.subarray(0, bytes.length - 4));
      await expect(readCheckpoint(truncated)).rejects.toThrow(/truncated\.safetensors/);
      const foreign = Buffer.from(bytes);
      const n = Number(foreign.readBigUInt64LE(0));
      const text = foreign
        .subarray(8, 8 + n)
        .toString('utf8')
        .replace('"advrec"', '"other!"');
      foreign.write(text, 8, 'utf8');
      const other = join(directory, 'other.safetensors');
      await writeFile(other, foreign);
      await expect(readCheckpoint(other)).rejects.toThrow(/written by advrec/);
      // A flipped bit in a tensor is caught by the checksum advrec adds to the metadata.
      const flipped = Buffer.from(bytes);
      flipped[flipped.length - 3]! ^= 0x10;
      const damaged = join(directory, 'flipped.safetensors');
      await writeFile(damaged, flipped);
      await expect(readCheckpoint(damaged)).rejects.toThrow(
        /flipped\.safetensors: expected a safetensors file whose SHA-256 \(advrec\.sha256\) matches/,
      );
      // Without the checksum (an earlier advrec, another tool): read only when allowed.
      const plain = Buffer.from(bytes);
      const unsigned = plain
        .subarray(8, 8 + n)
        .toString('utf8')
        .replace(/,"advrec\.sha256":"[0-9a-f]{64}"/, (m) => ' '.repeat(m.length));
      plain.write(unsigned, 8, 'utf8');
      const legacy = join(directory, 'legacy.safetensors');
      await writeFile(legacy, plain);
      await expect(readCheckpoint(legacy)).rejects.toThrow(
        /legacy\.safetensors: .*cannot be verified.*found "a safetensors file without a checksum"/,
      );
      const read = await readCheckpoint(legacy, { allowUnverified: true });
      expect(restoreModel(read.model).score(users, items)).toEqual(model.score(users, items));
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
