import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedDataFiles } from '@advrec/testing';
import { datasetEntry } from './load.js';
import type { DatasetEntry } from './load.js';
import { downloadDataset, safeMemberPath } from './fetch.js';
import { DownloadError } from '../errors.js';
import { runCli } from '../cli.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const gzipBomb = gzipSync(Buffer.alloc(8 * 2 ** 20));

/** A local HTTP server serving fixture bodies by path (nothing else is reachable here). */
const files = new Map<string, Uint8Array>();
let server: Server;
let base = '';
const requests: string[] = [];

beforeAll(async () => {
  const uData = new Uint8Array(readFileSync(sharedDataFiles().movielens100k));
  const readme = new TextEncoder().encode('MovieLens 100K fixture\n');
  files.set('/good/ml-100k.zip', zipSync({ 'ml-100k/u.data': uData, 'ml-100k/README': readme }));
  const tampered = uData.slice();
  tampered[10] = tampered[10] === 0x31 ? 0x32 : 0x31;
  files.set('/tampered/ml-100k.zip', zipSync({ 'ml-100k/u.data': tampered }));
  files.set('/evil/evil.zip', zipSync({ 'data/ok.txt': readme, '../escape.txt': readme }));
  files.set('/evil/absolute.zip', zipSync({ '/tmp/advrec-absolute.txt': readme }));
  // A zip bomb: the real u.data plus 64 MiB of zeros (about 64 KiB compressed, 1000x).
  files.set(
    '/bomb/ml-100k.zip',
    zipSync({ 'ml-100k/u.data': uData, 'ml-100k/zeros.bin': new Uint8Array(64 * 2 ** 20) }),
  );
  // Six ratings of three users in GroupLens' ML-1M layout (not the published archive).
  files.set(
    '/good/ml-1m.zip',
    zipSync({
      'ml-1m/ratings.dat': new TextEncoder().encode(
        '1::10::5::978300760\n1::11::3::978302109\n2::10::4::978301968\n2::12::5::978300275\n3::11::4::978824291\n3::12::3::978302268\n',
      ),
    }),
  );
  files.set('/good/train.txt', new Uint8Array(readFileSync(sharedDataFiles().gowallaTrain)));
  files.set('/good/test.txt', new Uint8Array(readFileSync(sharedDataFiles().gowallaTest)));
  server = createServer((request, response) => {
    requests.push(request.url ?? '');
    const body = files.get(request.url ?? '');
    if (request.url === '/stall/ml-100k.zip') return; // never answers
    if (request.url === '/endless/ml-100k.zip') {
      // A body without end (no length), 64 KiB at a time while the client reads.
      response.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 7);
      const more = (): void => {
        while (!response.destroyed && response.write(chunk));
        if (!response.destroyed) response.once('drain', more);
      };
      response.on('close', () => response.removeAllListeners('drain'));
      more();
      return;
    }
    if (request.url === '/gzip-bomb/ml-100k.zip') {
      // 256 MiB of zeros as 32 gzip members of 8 MiB each: about 250 KiB on the wire.
      response.writeHead(200, { 'content-encoding': 'gzip' });
      response.end(Buffer.concat(Array.from({ length: 32 }, () => gzipBomb)));
      return;
    }
    if (request.url === '/huge/ml-100k.zip') {
      // Announces 10 GB.
      response.writeHead(200, { 'content-length': 10 ** 10 });
      response.write(Buffer.alloc(1024));
      return;
    }
    if (request.url === '/cut/ml-100k.zip') {
      // Promises 1 MB, sends 1 KB, then drops the connection.
      response.writeHead(200, { 'content-length': 2 ** 20 });
      response.write(Buffer.alloc(1024));
      setTimeout(() => response.socket?.destroy(), 50);
      return;
    }
    if (!body) {
      response.writeHead(404).end('not found');
      return;
    }
    response.writeHead(200, { 'content-length': body.byteLength }).end(Buffer.from(body));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((done) => server.close(() => done())));

const folder = (): string => mkdtempSync(join(tmpdir(), 'advrec-download-'));

function sink(): NodeJS.WritableStream & { text: string } {
  const stream = { text: '', write: (s: string) => ((stream.text += s), true) };
  return stream as unknown as NodeJS.WritableStream & { text: string };
}

describe('datasets download (against a server on 127.0.0.1)', () => {
  it('downloads MovieLens 100K, checks the u.data SHA-256 inside the zip, flattens its top folder', async () => {
    const directory = folder();
    const result = await downloadDataset(datasetEntry('ml-100k'), {
      directory,
      // A mirror's own zip: not the publisher's archive (pinned), so it is verified through
      // its pinned u.data, and the result says so.
      mirror: `${base}/good/`,
    });
    expect(result.folder).toBe(join(directory, 'ml-100k'));
    expect(readdirSync(result.folder).sort()).toEqual(['README', 'advrec-dataset.json', 'u.data']);
    expect(sha256(readFileSync(join(result.folder, 'u.data')))).toBe(
      '06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490',
    );
    expect(result.files[0]!.verified).toBe(true);
    expect(result.files[0]!.verifiedThrough).toEqual(['ml-100k/u.data']);
  });

  it('pins the GroupLens archives themselves (size and SHA-256 as published)', () => {
    for (const [name, bytes] of [
      ['ml-100k', 4_924_029],
      ['ml-1m', 5_917_549],
    ] as const) {
      const [file] = datasetEntry(name).files;
      expect(file!.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(file!.bytes).toBe(bytes);
    }
  });

  it('ML-1M: an archive that is not the published one is refused (no member to fall back on); the published layout (ratings.dat) is read once downloaded', async () => {
    const directory = folder();
    const error = await downloadDataset(datasetEntry('ml-1m'), {
      directory,
      mirror: `${base}/good/`,
    }).catch((e: unknown) => e);
    expect(DownloadError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /ml-1m\.zip: SHA-256 mismatch: expected a6898adb[0-9a-f]{56}, got [0-9a-f]{64} \(\d+ bytes where the published file has 5917549: not the publisher's archive\)/,
    );
    expect(readdirSync(directory)).toEqual([]);
    // Pinned by hand (--sha256), the same archive downloads; `train --data ml-1m` then reads
    // GroupLens' ratings.dat, the archive's layout, since there is no train.txt.
    const zip = files.get('/good/ml-1m.zip')!;
    await downloadDataset(datasetEntry('ml-1m'), {
      directory,
      mirror: `${base}/good/`,
      sha256: { 'ml-1m.zip': sha256(zip) },
    });
    const saved = { ...process.env };
    process.env.ADVREC_DATA_DIR = directory;
    try {
      const stdout = sink();
      const code = await runCli(['--json', 'datasets', 'describe', 'ml-1m'], {
        stdout,
        stderr: sink(),
      });
      expect(code).toBe(0);
      const described = JSON.parse(stdout.text) as { users: number; interactions: number };
      expect(described.users).toBe(3);
      expect(described.interactions).toBe(6);
    } finally {
      process.env = saved;
    }
  });

  it('refuses an archive whose member does not match its checksum, leaving nothing behind', async () => {
    const directory = folder();
    const error = await downloadDataset(datasetEntry('ml-100k'), {
      directory,
      mirror: `${base}/tampered/`,
      skipChecksum: true,
    }).catch((e: unknown) => e);
    expect(DownloadError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/ml-100k\/u\.data: SHA-256 mismatch/);
    expect(readdirSync(directory)).toEqual([]);
  });

  it.each([
    [
      'an endless body',
      'endless',
      /the body goes on past 9848058 bytes; at most 9848058 bytes are allowed/,
    ],
    [
      'a gzip bomb sent as Content-Encoding',
      'gzip-bomb',
      /the body goes on past 9848058 bytes; at most 9848058 bytes are allowed/,
    ],
    ['a body announced at 10 GB', 'huge', /the server announces 10000000000 bytes/],
  ])(
    'stops %s at the pinned size (twice it for an archive verified through its members), in bounded memory',
    async (_what, route, message) => {
      const directory = folder();
      const before = process.memoryUsage().rss;
      const error = await downloadDataset(datasetEntry('ml-100k'), {
        directory,
        mirror: `${base}/${route}/`,
      }).catch((e: unknown) => e);
      expect(DownloadError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/--max-bytes sets the limit/);
      expect(readdirSync(directory)).toEqual([]);
      expect(process.memoryUsage().rss - before).toBeLessThan(96 * 2 ** 20);
    },
  );

  it('--dir naming a file (or a path under one) is a usage error naming it, before any request', async () => {
    const file = join(folder(), 'a-file');
    writeFileSync(file, 'x');
    for (const dir of [file, join(file, 'below')]) {
      const stderr = sink();
      const seen = requests.length;
      const code = await runCli(
        ['datasets', 'download', 'ml-100k', '--dir', dir, '--mirror', `${base}/good/`],
        { stdout: sink(), stderr },
      );
      expect(stderr.text).toBe(`advrec: invalid option --dir: ${file} is a file, not a folder\n`);
      expect(code).toBe(2);
      expect(requests.length).toBe(seen);
    }
  });

  it('--max-bytes sets the cap of a download: one line, exit 4, nothing left behind', async () => {
    const stderr = sink();
    const directory = folder();
    const code = await runCli(
      [
        '--quiet',
        'datasets',
        'download',
        'ml-100k',
        '--dir',
        directory,
        '--mirror',
        `${base}/endless/`,
        '--max-bytes',
        '100000',
      ],
      { stdout: sink(), stderr },
    );
    expect(stderr.text).toMatch(
      /^advrec: .*the body goes on past 100000 bytes; at most 100000 bytes are allowed/,
    );
    expect(stderr.text.trim().split('\n')).toHaveLength(1);
    expect(code).toBe(4);
    expect(readdirSync(directory)).toEqual([]);
  });

  it('refuses a zip bomb before inflating it, naming the member and its ratio, leaving nothing behind', async () => {
    const directory = folder();
    const before = process.memoryUsage().rss;
    const error = await downloadDataset(datasetEntry('ml-100k'), {
      directory,
      mirror: `${base}/bomb/`,
      skipChecksum: true,
    }).catch((e: unknown) => e);
    expect(DownloadError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /refusing member "ml-100k\/zeros\.bin": it expands \d+x, more than 100x \(a zip bomb\?\)/,
    );
    expect(readdirSync(directory)).toEqual([]);
    // Refused from the headers: the 64 MiB were never inflated.
    expect(process.memoryUsage().rss - before).toBeLessThan(48 * 2 ** 20);
    // Size caps apply too (here a 1 MiB cap on members and totals).
    const capped = await downloadDataset(datasetEntry('ml-100k'), {
      directory,
      mirror: `${base}/good/`,
      skipChecksum: true,
      limits: { maxMemberBytes: 2 ** 20, maxTotalBytes: 2 ** 30, maxRatio: 100 },
    }).catch((e: unknown) => e);
    expect((capped as Error).message).toMatch(
      /"ml-100k\/u\.data": it expands to \d+ bytes, more than 1048576/,
    );
  });

  it("downloads Gowalla's two files and verifies both against the pinned hashes", async () => {
    const directory = folder();
    const result = await downloadDataset(datasetEntry('gowalla'), {
      directory,
      mirror: `${base}/good`,
    });
    expect(result.files.map((f) => f.verified)).toEqual([true, true]);
    expect(readdirSync(result.folder).sort()).toEqual([
      'advrec-dataset.json',
      'test.txt',
      'train.txt',
    ]);
    // A second download without --force is refused; with it the folder is replaced.
    await expect(
      downloadDataset(datasetEntry('gowalla'), { directory, mirror: `${base}/good` }),
    ).rejects.toThrow(/already exists/);
    await downloadDataset(datasetEntry('gowalla'), {
      directory,
      mirror: `${base}/good`,
      force: true,
    });
  });

  it('needs a pinned checksum (or an explicit opt-out) for files without one', async () => {
    const directory = folder();
    await expect(
      downloadDataset(datasetEntry('yelp2018'), { directory, mirror: `${base}/good/` }),
    ).rejects.toThrow(/no SHA-256 is recorded for this file; pass --sha256 train\.txt=<hex>/);
    const zip = files.get('/good/ml-100k.zip')!;
    await downloadDataset(datasetEntry('ml-100k'), {
      directory,
      mirror: `${base}/good/`,
      sha256: { 'ml-100k.zip': sha256(zip) },
    });
    await expect(
      downloadDataset(datasetEntry('ml-100k'), {
        directory,
        mirror: `${base}/good/`,
        sha256: { 'ml-100k.zip': '0'.repeat(64) },
        force: true,
      }),
    ).rejects.toThrow(/SHA-256 mismatch: expected 0{64}, got [0-9a-f]{64}/);
    expect(readdirSync(directory)).toEqual(['ml-100k']);
  });

  it('never writes outside the target folder (zip slip, absolute members)', async () => {
    for (const name of ['evil.zip', 'absolute.zip']) {
      const directory = folder();
      const entry: DatasetEntry = {
        ...datasetEntry('ml-100k'),
        name: 'evil',
        files: [
          { url: `${base}/evil/${name}`, sha256: sha256(files.get(`/evil/${name}`)!), kind: 'zip' },
        ],
      };
      const error = await downloadDataset(entry, { directory }).catch((e: unknown) => e);
      expect(DownloadError.isInstance(error)).toBe(true);
      expect((error as Error).message).toMatch(/refusing member/);
      expect(readdirSync(directory)).toEqual([]);
      expect(existsSync(join(directory, '..', 'escape.txt'))).toBe(false);
    }
    expect(existsSync('/tmp/advrec-absolute.txt')).toBe(false);
    expect(() => safeMemberPath('/data/x', 'a/../../b', 'z')).toThrow(/outside/);
    expect(() => safeMemberPath('/data/x', 'C:\\windows\\x', 'z')).toThrow(/absolute/);
    expect(safeMemberPath('/data/x', 'a/./b/../c.txt', 'z')).toBe('/data/x/a/c.txt');
  });

  it('reports HTTP errors as download errors', async () => {
    const error = await downloadDataset(datasetEntry('gowalla'), {
      directory: folder(),
      mirror: `${base}/missing/`,
    }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/HTTP 404/);
  });

  it('a server that never answers, or drops the connection, is a download error naming the URL', async () => {
    const stalled = await downloadDataset(datasetEntry('ml-100k'), {
      directory: folder(),
      mirror: `${base}/stall/`,
      timeoutSeconds: 0.5,
    }).catch((e: unknown) => e);
    expect(DownloadError.isInstance(stalled)).toBe(true);
    expect((stalled as Error).message).toContain(
      `${base}/stall/ml-100k.zip: no response: no data for 0.5 s`,
    );
    const directory = folder();
    const cut = await downloadDataset(datasetEntry('ml-100k'), {
      directory,
      mirror: `${base}/cut/`,
    }).catch((e: unknown) => e);
    expect(DownloadError.isInstance(cut)).toBe(true);
    expect((cut as Error).message).toMatch(
      /cut\/ml-100k\.zip: the connection was lost after \d+ of 1048576 bytes/,
    );
    expect(readdirSync(directory)).toEqual([]);
  });

  it('a mirror that is not an http(s) URL is a usage error (exit 2)', async () => {
    const stderr = sink();
    const code = await runCli(
      ['datasets', 'download', 'ml-100k', '--dir', folder(), '--mirror', 'not a url'],
      { stdout: sink(), stderr },
    );
    expect(code).toBe(2);
    expect(stderr.text).toMatch(/--mirror: not a URL/);
  });

  it('removes staging folders left by killed downloads, keeps those of running ones', async () => {
    const directory = folder();
    const { mkdirSync } = await import('node:fs');
    // pid 2^22 + 1 is above Linux's pid_max default range: no such process.
    mkdirSync(join(directory, `ml-100k.partial-${2 ** 22 + 1}`, 'ml-100k'), { recursive: true });
    mkdirSync(join(directory, `ml-100k.partial-${process.ppid}`), { recursive: true });
    await downloadDataset(datasetEntry('ml-100k'), { directory, mirror: `${base}/good/` });
    expect(readdirSync(directory).sort()).toEqual(['ml-100k', `ml-100k.partial-${process.ppid}`]);
  });

  it('works through the CLI: exit 0, then exit 4 for a checksum mismatch', async () => {
    const directory = folder();
    const stdout = sink();
    const stderr = sink();
    const ok = await runCli(
      [
        '--quiet',
        'datasets',
        'download',
        'gowalla',
        '--dir',
        directory,
        '--mirror',
        `${base}/good/`,
      ],
      { stdout, stderr },
    );
    expect(ok).toBe(0);
    expect(stdout.text).toMatch(/train\.txt: 4633414 bytes, sha256 0f086326.* \(verified\)/);
    const bad = sink();
    const code = await runCli(
      [
        '--quiet',
        'datasets',
        'download',
        'ml-100k',
        '--dir',
        directory,
        '--mirror',
        `${base}/tampered/`,
        '--skip-checksum',
      ],
      { stdout: sink(), stderr: bad },
    );
    expect(code).toBe(4);
    expect(bad.text).toMatch(/advrec: .*SHA-256 mismatch/);
    expect(readdirSync(directory)).toEqual(['gowalla']);
  });
});

describe('data sets by name on first use (a mirror on 127.0.0.1, an empty cache)', () => {
  it('train --data ml-100k downloads into $XDG_CACHE_HOME/advrec, verifies, trains; the second run uses the cache', async () => {
    const cache = folder();
    const saved = { ...process.env };
    delete process.env.ADVREC_DATA_DIR;
    // No shared copy to find: the data set must come from the mirror.
    process.env.ADVREC_SHARED_DATA = join(cache, 'no-shared-copy');
    process.env.XDG_CACHE_HOME = cache;
    process.env.ADVREC_DATASETS_MIRROR = `${base}/good/`;
    const train = async (out: string): Promise<{ code: number; stderr: string }> => {
      const stderr = sink();
      const code = await runCli(
        [
          'train',
          '--data',
          'ml-100k',
          '--set',
          'training.epochs=1',
          '--set',
          'training.adversarialEpochs=0',
          '--set',
          'attack.epsilons=[]',
          '--out',
          join(cache, out),
        ],
        { stdout: sink(), stderr },
      );
      return { code, stderr: stderr.text };
    };
    try {
      const before = requests.length;
      const first = await train('run-1');
      expect(first.stderr).toMatch(
        /ml-100k is not in .*advrec\/datasets: downloading it from http:\/\/127\.0\.0\.1/,
      );
      expect(first.code).toBe(0);
      expect(requests.slice(before)).toEqual(['/good/ml-100k.zip']);
      expect(sha256(readFileSync(join(cache, 'advrec', 'datasets', 'ml-100k', 'u.data')))).toBe(
        '06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490',
      );
      const second = await train('run-2');
      expect(second.code).toBe(0);
      expect(second.stderr).not.toMatch(/downloading/);
      expect(requests.length).toBe(before + 1);
      // Offline, a missing data set is named with the command that fetches it.
      process.env.XDG_CACHE_HOME = join(cache, 'empty');
      process.env.ADVREC_OFFLINE = '1';
      const offline = await train('run-3');
      expect(offline.code).toBe(3);
      expect(offline.stderr).toMatch(/run: advrec datasets download ml-100k/);
    } finally {
      process.env = saved;
    }
  }, 120_000);
});
