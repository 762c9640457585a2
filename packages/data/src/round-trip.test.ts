import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  readDelimited,
  readNpy,
  readRawFeatures,
  readUserItemLists,
  writeNpy,
  writeRawFeatures,
  type InteractionLog,
} from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'advrec-roundtrip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const fresh = (name: string): string => join(dir, `${counter++}-${name}`);

/** The log as (user, item, rating, timestamp) source-id tuples, in file order. */
function tuples(log: InteractionLog): [string, string, number | null, number | null][] {
  return Array.from({ length: log.length }, (_, k) => [
    log.userIdMap.toSource(log.users[k]!),
    log.itemIdMap.toSource(log.items[k]!),
    log.ratings ? log.ratings[k]! : null,
    log.timestamps ? log.timestamps[k]! : null,
  ]);
}

/** Ids as users write them: text with commas, quotes, accents, spaces inside; no blanks around. */
const textId = fc
  .string({
    unit: fc.constantFrom(...'abcXYZ019 ,"éè漢-_'.split('')),
    minLength: 1,
    maxLength: 8,
  })
  .filter((s) => s.trim() === s && s !== '');
/** Integer ids, including ones beyond 2^53 written as text. */
const bigIntegerId = fc.bigInt({ min: 0n, max: 2n ** 64n }).map((v) => v.toString());

const rows = <T>(id: fc.Arbitrary<string>, extra: fc.Arbitrary<T>) =>
  fc.array(fc.tuple(id, id, extra), { minLength: 1, maxLength: 40 });

function csvField(value: string): string {
  return /[",]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

describe('readers round-trip random valid files (fast-check)', () => {
  it('CSV with a header, quoted text ids, ratings and timestamps', async () => {
    await fc.assert(
      fc.asyncProperty(
        rows(
          textId,
          fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 2_000_000_000 })),
        ),
        fc.boolean(),
        async (lines, crlf) => {
          const file = fresh('log.csv');
          const eol = crlf ? '\r\n' : '\n';
          const body = lines
            .map(([u, i, [r, t]]) => `${csvField(u)},${csvField(i)},${r},${t}`)
            .join(eol);
          writeFileSync(file, `user,item,rating,timestamp${eol}${body}${eol}`);
          const log = await readDelimited(file, { delimiter: ',', header: true });
          expect(tuples(log)).toEqual(lines.map(([u, i, [r, t]]) => [u, i, r, t]));
        },
      ),
      { numRuns: 120, seed: 5 },
    );
  });

  it('tab-separated integer ids of any size keep every distinct id distinct', async () => {
    await fc.assert(
      fc.asyncProperty(rows(bigIntegerId, fc.constant(null)), async (lines) => {
        const file = fresh('log.tsv');
        writeFileSync(file, lines.map(([u, i]) => `${u}\t${i}`).join('\n'));
        const log = await readDelimited(file, { delimiter: '\t', header: false });
        expect(tuples(log)).toEqual(lines.map(([u, i]) => [u, i, null, null]));
        expect(log.userIdMap.size).toBe(new Set(lines.map(([u]) => u)).size);
      }),
      { numRuns: 120, seed: 6 },
    );
  });

  it('Latin-1 CSV read as latin1 keeps accented ids apart', async () => {
    await fc.assert(
      fc.asyncProperty(rows(textId, fc.constant(null)), async (lines) => {
        const latin = lines.filter(([u, i]) => !/[漢]/.test(u + i));
        fc.pre(latin.length > 0);
        const file = fresh('latin1.csv');
        const text = latin.map(([u, i]) => `${csvField(u)},${csvField(i)}`).join('\n');
        writeFileSync(file, Buffer.from(text, 'latin1'));
        const log = await readDelimited(file, {
          delimiter: ',',
          header: false,
          encoding: 'latin1',
        });
        expect(tuples(log)).toEqual(latin.map(([u, i]) => [u, i, null, null]));
      }),
      { numRuns: 60, seed: 7 },
    );
  });

  it('user-item lists', async () => {
    const lists = fc.array(
      fc.tuple(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.array(fc.integer({ min: 0, max: 1e9 }), { minLength: 1, maxLength: 12 }),
      ),
      { minLength: 1, maxLength: 30 },
    );
    await fc.assert(
      fc.asyncProperty(lists, async (users) => {
        const file = fresh('train.txt');
        writeFileSync(file, users.map(([u, items]) => `${u} ${items.join(' ')}`).join('\n'));
        const log = await readUserItemLists(file);
        const expected = users.flatMap(([u, items]) =>
          items.map((i) => [String(u), String(i), null, null]),
        );
        expect(tuples(log)).toEqual(expected);
      }),
      { numRuns: 120, seed: 8 },
    );
  });

  const matrices = fc
    .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }))
    .chain(([r, d]) =>
      fc.tuple(
        fc.constant(r),
        fc.constant(d),
        fc.array(
          fc.float({
            noNaN: true,
            noDefaultInfinity: true,
            min: Math.fround(-1e30),
            max: Math.fround(1e30),
          }),
          {
            minLength: r * d,
            maxLength: r * d,
          },
        ),
      ),
    );

  it('float32 .npy and raw feature files are bit-exact', async () => {
    await fc.assert(
      fc.asyncProperty(matrices, async ([r, d, values]) => {
        const data = Float32Array.from(values);
        const npy = fresh('f.npy');
        const raw = fresh('f.bin');
        await writeNpy(npy, data, r, d);
        await writeRawFeatures(raw, data, r, d);
        for (const read of [await readNpy(npy), await readRawFeatures(raw)]) {
          expect([read.rows, read.dimension]).toEqual([r, d]);
          expect(Array.from(read.data)).toEqual(Array.from(data));
        }
      }),
      { numRuns: 100, seed: 9 },
    );
  });

  it('float16 .npy keeps values representable in half precision exactly', async () => {
    const halves = fc
      .tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }))
      .chain(([r, d]) =>
        fc.tuple(
          fc.constant(r),
          fc.constant(d),
          // k / 1024 for |k| < 2048: exact in float16.
          fc.array(
            fc.integer({ min: -2047, max: 2047 }).map((k) => k / 1024),
            {
              minLength: r * d,
              maxLength: r * d,
            },
          ),
        ),
      );
    await fc.assert(
      fc.asyncProperty(halves, async ([r, d, values]) => {
        const file = fresh('h.npy');
        await writeNpy(file, Float32Array.from(values), r, d, { dtype: 'float16' });
        const read = await readNpy(file);
        expect(read.fileType).toBe('float16');
        expect(Array.from(read.data)).toEqual(values);
      }),
      { numRuns: 60, seed: 10 },
    );
  });
});
