import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { ConfigError, processIsAlive } from '@advrec/data';
import { basename, dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { unzipSync } from 'fflate';
import type { DatasetEntry, DatasetFile } from './entries.js';
import { DownloadError } from '../errors.js';

/** Options of {@link downloadDataset}. */
export interface DownloadOptions {
  /** Folder that receives `<name>/` (default: the data folder). */
  readonly directory: string;
  /** Fetch every file from this base URL instead (a mirror; tests use a server on 127.0.0.1). */
  readonly mirror?: string;
  /** Pinned SHA-256 per file name, for files whose checksum the registry does not know. */
  readonly sha256?: Readonly<Record<string, string>>;
  /** Download files without a known checksum anyway (their hashes are printed to pin them). */
  readonly skipChecksum?: boolean;
  /** Replace an existing folder. */
  readonly force?: boolean;
  /** Progress: bytes received so far and the total when known. */
  readonly onProgress?: (file: string, received: number, total: number | null) => void;
  readonly fetch?: typeof fetch;
  /** What archives may expand to (default {@link EXTRACTION_LIMITS}). */
  readonly limits?: ExtractionLimits;
  /** Seconds without data before giving up (default {@link DOWNLOAD_IDLE_TIMEOUT_SECONDS}). */
  readonly timeoutSeconds?: number;
  /**
   * Most bytes one file may bring. Default: its published size when the registry pins it (an
   * archive verified through its members, which a mirror may repack: twice that), else
   * {@link DEFAULT_MAX_DOWNLOAD_BYTES}.
   */
  readonly maxBytes?: number;
}

/** What {@link downloadDataset} did. */
export interface DownloadResult {
  readonly folder: string;
  readonly files: readonly DownloadedFile[];
  readonly extracted: readonly string[];
}

/** One downloaded file and how it was verified. */
export interface DownloadedFile {
  readonly url: string;
  /** SHA-256 of the bytes received. */
  readonly sha256: string;
  /** Whether it was checked against a trusted hash. */
  readonly verified: boolean;
  /**
   * Set when an archive was verified through its pinned members instead of its own hash (a
   * mirror that repacked the publisher's archive): the members checked.
   */
  readonly verifiedThrough?: readonly string[];
  readonly bytes: number;
}

/**
 * Checks that `path` is a folder or can become one: the nearest existing folder on the way
 * must not be a file (which would fail as ENOTDIR or EEXIST deep inside a download).
 */
export function assertFolderPath(path: string, field: string): void {
  for (let at = resolve(path); ; at = dirname(at)) {
    if (existsSync(at)) {
      if (!statSync(at).isDirectory())
        throw new ConfigError([{ path: field, message: `${at} is a file, not a folder` }]);
      return;
    }
    if (dirname(at) === at) return;
  }
}

/** ", N bytes where the publisher's file has M", when the sizes differ and the pin is the registry's. */
function sizeNote(file: DatasetFile, bytes: number, overridden: boolean): string {
  if (overridden || file.bytes === undefined || file.bytes === bytes) return '';
  return ` (${bytes} bytes where the published file has ${file.bytes}: not the publisher's archive)`;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The path an archive member may be written to, or an error when it would land outside the
 * target folder (absolute paths, drive letters, `..` segments: "zip slip").
 */
export function safeMemberPath(target: string, member: string, archive: string): string {
  const name = member.replace(/\\/g, '/');
  if (
    name.includes('\u0000') ||
    isAbsolute(name) ||
    /^[a-zA-Z]:/.test(name) ||
    name.startsWith('/')
  )
    throw new DownloadError(`${archive}: refusing member "${member}": absolute path`);
  const root = resolve(target);
  const path = resolve(root, normalize(name));
  if (path !== root && !path.startsWith(root + sep))
    throw new DownloadError(
      `${archive}: refusing member "${member}": it would be written outside ${root}`,
    );
  return path;
}

import { DOWNLOAD_IDLE_TIMEOUT_SECONDS } from '../options.js';
export { DOWNLOAD_IDLE_TIMEOUT_SECONDS };

/**
 * Bytes a download may bring when its size is not pinned (or a `--sha256` pin replaces the
 * registry's): 1 GiB. `--max-bytes` (`maxBytes`) sets another limit.
 */
export const DEFAULT_MAX_DOWNLOAD_BYTES = 1 << 30;

/** A file downloaded to disk: where it is, its SHA-256 and its size. */
interface FetchedFile {
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * Streams `url` into `path`, hashing as it goes, and stops at `maxBytes` (the body as
 * received, after any content coding the server applied: a gzip bomb stops at the cap too).
 * Memory stays at one chunk whatever the server sends; `identity` is asked for so that a
 * well-behaved server sends the file as it is.
 */
async function fetchToFile(
  url: string,
  path: string,
  maxBytes: number,
  options: DownloadOptions,
): Promise<FetchedFile> {
  const doFetch = options.fetch ?? fetch;
  const idleMs = (options.timeoutSeconds ?? DOWNLOAD_IDLE_TIMEOUT_SECONDS) * 1000;
  // One timer, re-armed by every chunk: a server that never answers, or stops sending,
  // ends the download with the URL named instead of hanging.
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), idleMs);
  const rearm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(), idleMs);
  };
  const stalled = (what: string): DownloadError =>
    new DownloadError(
      `${url}: ${what}: no data for ${idleMs / 1000} s (check the URL or the network; --timeout sets the limit)`,
    );
  const tooLarge = (what: string): DownloadError =>
    new DownloadError(
      `${url}: ${what}; at most ${maxBytes} bytes are allowed (the published size when it is pinned; --max-bytes sets the limit)`,
    );
  let response: Response;
  try {
    response = await doFetch(url, {
      redirect: 'follow',
      signal: controller.signal,
      headers: { 'accept-encoding': 'identity' },
    });
  } catch (error) {
    clearTimeout(timer);
    if (controller.signal.aborted) throw stalled('no response');
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    throw new DownloadError(`${url}: ${(error as Error).message}${cause ? ` (${cause})` : ''}`, {
      cause: error,
    });
  }
  if (!response.ok || response.body === null) {
    clearTimeout(timer);
    throw new DownloadError(`${url}: HTTP ${response.status} ${response.statusText}`);
  }
  const length = Number(response.headers.get('content-length'));
  const total = Number.isFinite(length) && length > 0 ? length : null;
  const encoded = (response.headers.get('content-encoding') ?? 'identity') !== 'identity';
  if (total !== null && total > maxBytes && !encoded) {
    clearTimeout(timer);
    controller.abort();
    throw tooLarge(`the server announces ${total} bytes`);
  }
  const hash = createHash('sha256');
  const out = await open(path, 'w');
  let received = 0;
  const reader = response.body.getReader();
  try {
    for (;;) {
      rearm();
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (controller.signal.aborted) throw stalled(`stalled after ${received} bytes`);
        throw new DownloadError(
          `${url}: the connection was lost after ${received}${total !== null ? ` of ${total}` : ''} bytes (${(error as Error).message}); run the download again`,
          { cause: error },
        );
      }
      if (chunk.done) break;
      received += chunk.value.byteLength;
      if (received > maxBytes) {
        controller.abort();
        throw tooLarge(`the body goes on past ${maxBytes} bytes`);
      }
      hash.update(chunk.value);
      await out.write(chunk.value);
      options.onProgress?.(url, received, total);
    }
  } finally {
    clearTimeout(timer);
    await out.close();
  }
  // A content-coded body's length is that of the coded bytes, not of what arrived.
  if (total !== null && !encoded && received !== total)
    throw new DownloadError(`${url}: truncated download (${received} of ${total} bytes)`);
  return { path, sha256: hash.digest('hex'), bytes: received };
}

function urlOf(file: DatasetFile, mirror: string | undefined): string {
  if (!mirror) return file.url;
  let base: URL;
  try {
    base = new URL(mirror.endsWith('/') ? mirror : `${mirror}/`);
  } catch {
    throw new ConfigError([{ path: '--mirror', message: `not a URL: ${JSON.stringify(mirror)}` }]);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new ConfigError([
      { path: '--mirror', message: `must be an http(s) URL, got ${JSON.stringify(mirror)}` },
    ]);
  return new URL(basename(new URL(file.url).pathname), base).href;
}

/**
 * Removes `<folder>.partial-<pid>` staging folders left by downloads that were killed: those
 * whose process no longer runs.
 */
async function removeStaleStaging(folder: string): Promise<void> {
  const parent = dirname(folder);
  const prefix = `${basename(folder)}.partial-`;
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (!Number.isInteger(pid) || pid === process.pid || processIsAlive(pid)) continue;
    await rm(join(parent, name), { recursive: true, force: true });
  }
}

/** What an archive may expand to: zip bombs are refused before they are inflated. */
export interface ExtractionLimits {
  /** Largest uncompressed member, bytes. */
  readonly maxMemberBytes: number;
  /** Largest uncompressed total, bytes. */
  readonly maxTotalBytes: number;
  /** Largest uncompressed / compressed size of a member (text data sets compress 3-10x). */
  readonly maxRatio: number;
}

/** The limits `advrec datasets download` applies (the public data sets stay far below them). */
export const EXTRACTION_LIMITS: ExtractionLimits = {
  maxMemberBytes: 4 * 2 ** 30,
  maxTotalBytes: 8 * 2 ** 30,
  maxRatio: 100,
};

/**
 * Inflates a zip archive within `limits`: each member's declared sizes are checked before it
 * is inflated (fflate's filter), and the inflated sizes after, so a member that lies about
 * its size is caught too.
 */
export function unzipBounded(
  bytes: Uint8Array,
  url: string,
  limits: ExtractionLimits,
): Record<string, Uint8Array> {
  let declared = 0;
  const refuse = (member: string, why: string): never => {
    throw new DownloadError(`${url}: refusing member "${member}": ${why} (a zip bomb?)`);
  };
  let members: Record<string, Uint8Array>;
  try {
    members = unzipSync(bytes, {
      filter: (file) => {
        if (file.originalSize > limits.maxMemberBytes)
          refuse(
            file.name,
            `it expands to ${file.originalSize} bytes, more than ${limits.maxMemberBytes}`,
          );
        if (file.size > 0 && file.originalSize / file.size > limits.maxRatio)
          refuse(
            file.name,
            `it expands ${Math.round(file.originalSize / file.size)}x, more than ${limits.maxRatio}x`,
          );
        declared += file.originalSize;
        if (declared > limits.maxTotalBytes)
          refuse(file.name, `the archive expands to more than ${limits.maxTotalBytes} bytes`);
        return true;
      },
    });
  } catch (error) {
    if (DownloadError.isInstance(error)) throw error;
    throw new DownloadError(`${url}: not a readable zip archive (${(error as Error).message})`);
  }
  let total = 0;
  for (const [member, content] of Object.entries(members)) {
    total += content.byteLength;
    if (content.byteLength > limits.maxMemberBytes || total > limits.maxTotalBytes)
      refuse(member, 'it expanded beyond what its header declared');
  }
  return members;
}

/**
 * Refuses an archive in which one member is a file and also a folder of another (`a` and
 * `a/b`; a symbolic link is extracted as a file, so a link and a member under it too): it
 * cannot be written as it is, and would fail as EEXIST or ENOTDIR half-way through.
 */
function refuseFileFolderClash(members: readonly string[], url: string): void {
  const files = new Set(members.map((m) => m.replace(/\\/g, '/')));
  for (const member of files) {
    const parts = member.split('/');
    for (let k = 1; k < parts.length; k++) {
      const folder = parts.slice(0, k).join('/');
      if (files.has(folder))
        throw new DownloadError(
          `${url}: refusing member "${member}": it lies under member "${folder}", which is a file (a malformed or hostile archive)`,
        );
    }
  }
}

/**
 * Downloads a data set's files, checks each against its SHA-256 (and archive members against
 * theirs), extracts archives without letting any member escape the target folder, and moves
 * the result into place only when everything checked out: a failed download leaves no
 * partial folder behind.
 */
export async function downloadDataset(
  entry: DatasetEntry,
  options: DownloadOptions,
): Promise<DownloadResult> {
  if (entry.files.length === 0)
    throw new DownloadError(`${entry.name} is generated, there is nothing to download`);
  const folder = resolve(options.directory, entry.name);
  if (existsSync(folder) && !options.force)
    throw new DownloadError(`${folder} already exists (pass --force to replace it)`);
  const staging = `${folder}.partial-${process.pid}`;
  await removeStaleStaging(folder);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const files: DownloadedFile[] = [];
  const extracted: string[] = [];
  try {
    for (const file of entry.files) {
      const url = urlOf(file, options.mirror);
      const name = basename(new URL(file.url).pathname);
      const expected = options.sha256?.[name] ?? file.sha256;
      // An archive whose members are pinned is verified through them.
      const membersPinned = file.kind === 'zip' && Object.keys(file.members ?? {}).length > 0;
      if (expected === null && !membersPinned && !options.skipChecksum)
        throw new DownloadError(
          `${name}: no SHA-256 is recorded for this file; pass --sha256 ${name}=<hex> from a source you trust, or --skip-checksum to download it unverified`,
        );
      const overridden = options.sha256?.[name] !== undefined;
      const pinnedSize = !overridden && file.bytes !== undefined ? file.bytes : null;
      const maxBytes =
        options.maxBytes ??
        (pinnedSize !== null
          ? membersPinned
            ? 2 * pinnedSize
            : pinnedSize
          : DEFAULT_MAX_DOWNLOAD_BYTES);
      const fetched = await fetchToFile(url, join(staging, `.download-${name}`), maxBytes, options);
      const actual = fetched.sha256;
      // Verified by the published hash, or else (a mirror's repacked archive, or no hash
      // known) by the pinned members, checked after extraction below.
      const matches = expected !== null && actual === expected.toLowerCase();
      if (expected !== null && !matches) {
        if (!membersPinned || overridden)
          throw new DownloadError(
            `${url}: SHA-256 mismatch: expected ${expected}, got ${actual}${sizeNote(file, fetched.bytes, overridden)}`,
          );
      }
      const throughMembers = !matches && membersPinned;
      files.push({
        url,
        sha256: actual,
        verified: matches || throughMembers,
        ...(throughMembers ? { verifiedThrough: Object.keys(file.members ?? {}) } : {}),
        bytes: fetched.bytes,
      });
      if (file.kind === 'file') {
        const path = safeMemberPath(staging, file.saveAs ?? name, url);
        await rename(fetched.path, path);
        extracted.push(file.saveAs ?? name);
        continue;
      }
      // An archive is read back whole to inflate it: at most maxBytes.
      const bytes = new Uint8Array(await readFile(fetched.path));
      await rm(fetched.path, { force: true });
      const members = unzipBounded(bytes, url, options.limits ?? EXTRACTION_LIMITS);
      // Check every member's path before writing any of them.
      const planned = Object.entries(members).map(([member, content]) => ({
        member,
        content,
        path: safeMemberPath(staging, member, url),
      }));
      for (const [member, hash] of Object.entries(file.members ?? {})) {
        const content = members[member];
        if (!content) throw new DownloadError(`${url}: archive has no member ${member}`);
        if (sha256(content) !== hash)
          throw new DownloadError(
            `${url}: member ${member}: SHA-256 mismatch: expected ${hash}, got ${sha256(content)}`,
          );
      }
      // Archives with one top folder (ml-100k/...) are flattened into the data set's folder.
      const tops = new Set(planned.map((p) => p.member.replace(/\\/g, '/').split('/')[0]));
      const strip = tops.size === 1 && planned.every((p) => p.member.includes('/'));
      const written = planned
        .filter((p) => !p.member.endsWith('/'))
        .map((p) => ({
          ...p,
          relative: strip ? p.member.replace(/\\/g, '/').split('/').slice(1).join('/') : p.member,
        }));
      refuseFileFolderClash(
        written.map((p) => p.relative),
        url,
      );
      for (const { relative, content } of written) {
        const path = safeMemberPath(staging, relative, url);
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, content);
        extracted.push(relative);
      }
    }
    await writeFile(
      join(staging, 'advrec-dataset.json'),
      `${JSON.stringify({ name: entry.name, publisher: entry.publisher, downloaded: new Date().toISOString(), files }, null, 2)}\n`,
    );
    if (existsSync(folder)) await rm(folder, { recursive: true, force: true });
    await rename(staging, folder);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  return { folder, files, extracted };
}
