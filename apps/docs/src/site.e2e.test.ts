/**
 * The built site (`pnpm --filter docs build`, part of `pnpm build`), served on 127.0.0.1:
 * every page reachable from the home page, no broken internal link, and, in headless
 * Chromium (Debian's `chromium`, or CHROMIUM_PATH), no console error, equations and plots
 * rendered; screenshots of the home, a guide, the results page and a package page go to
 * artifacts/, each checked at 1280 px for tables or code cut off at the column's edge and for
 * raw JSON key paths used as labels.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath } from '@advrec/testing';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(docs, '.vitepress', 'dist');
const artifacts = join(docs, '..', '..', 'artifacts');
const chromium = chromiumPath();

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.png': 'image/png',
};

/** Resolves a URL path the way VitePress' preview does (clean URLs and `.html`). */
function fileFor(pathname: string): string | null {
  const clean = normalize(decodeURIComponent(pathname)).replace(/^(\.\.[/\\])+/, '');
  for (const candidate of [clean, `${clean}.html`, join(clean, 'index.html')]) {
    const file = join(dist, candidate);
    if (file.startsWith(dist) && existsSync(file) && statSync(file).isFile()) return file;
  }
  return null;
}

let server: Server;
let base = '';

beforeAll(async () => {
  if (!existsSync(join(dist, 'index.html')))
    throw new Error(`${dist} is missing: build the site first (pnpm --filter docs build)`);
  server = createServer((request, response) => {
    const file = fileFor(new URL(request.url ?? '/', 'http://x').pathname);
    if (!file) {
      response.writeHead(404).end('not found');
      return;
    }
    response
      .writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
      .end(readFileSync(file));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((done) => server.close(() => done())));

/** Every page reachable from the home page by internal links, and every link seen. */
async function crawl(): Promise<{ pages: string[]; links: Map<string, string> }> {
  const pages: string[] = [];
  const links = new Map<string, string>(); // target -> a page linking to it
  const queue = ['/'];
  const seen = new Set(queue);
  while (queue.length > 0) {
    const page = queue.shift()!;
    const response = await fetch(base + page);
    if (!response.ok) continue;
    pages.push(page);
    const html = await response.text();
    for (const match of html.matchAll(/<a\b[^>]*\bhref="([^"]+)"/g)) {
      const href = match[1]!.replace(/&amp;/g, '&');
      if (/^(https?:|mailto:|#)/.test(href)) continue;
      const url = new URL(href, base + page);
      const target = url.pathname;
      if (!links.has(target)) links.set(target, page);
      if (!seen.has(target) && (target.endsWith('.html') || target.endsWith('/'))) {
        seen.add(target);
        queue.push(target);
      }
    }
  }
  return { pages, links };
}

/**
 * Run in the page (a string: this package has no DOM types): tables and code blocks whose
 * content is cut at the column's edge (neither fitting nor scrolling in their own box), and
 * table labels that are raw JSON key paths (`protocol.config.embeddingSize`).
 */
const LAYOUT_CHECK = `(() => {
  const clipped = [];
  for (const box of document.querySelectorAll('.vp-doc table, .vp-doc div[class*="language-"] pre')) {
    const scrolls = ['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
    const right = box.getBoundingClientRect().right;
    if (!scrolls && (box.scrollWidth > box.clientWidth + 1 || right > window.innerWidth))
      clipped.push(box.textContent.slice(0, 60));
  }
  const rawKeys = [...document.querySelectorAll('.vp-doc td, .vp-doc th')]
    .filter((cell) => cell.querySelector('code') === null)
    .map((cell) => cell.textContent.trim())
    .filter((text) => /^[a-z]\\w*(\\.[\\w@-]+)+$/.test(text) && /[a-z][A-Z]/.test(text));
  return { clipped, rawKeys };
})()`;

describe('docs site', () => {
  it('every internal link resolves, and every guide, concept, package and reference page is reachable', async () => {
    const { pages, links } = await crawl();
    const broken: string[] = [];
    for (const [target, from] of links)
      if (!fileFor(target)) broken.push(`${target} (linked from ${from})`);
    expect(broken).toEqual([]);
    for (const page of [
      '/guide/getting-started.html',
      '/guide/cli.html',
      '/guide/plugins.html',
      '/concepts/adversarial-recommendation.html',
      '/concepts/evaluation.html',
      '/packages/trainer.html',
      '/reference/cli.html',
      '/reference/config.html',
      '/api/',
      '/results/',
    ])
      expect(pages, page).toContain(page);
    expect(pages.length).toBeGreaterThanOrEqual(20);
  }, 60_000);

  it('the generated pages carry what they are generated from', async () => {
    const cli = await (await fetch(`${base}/reference/cli.html`)).text();
    for (const command of ['advrec train', 'advrec reproduce apr', 'advrec datasets download'])
      expect(cli).toContain(command);
    expect(cli).toContain('--adversarial-epochs');
    const config = await (await fetch(`${base}/reference/config.html`)).text();
    expect(config).toContain('adversarialWeight');
    const results = await (await fetch(`${base}/results/`)).text();
    const gowalla = JSON.parse(
      readFileSync(join(docs, '..', '..', 'bench', 'results', 'quality-gowalla.json'), 'utf8'),
    );
    expect(results).toContain(gowalla.results.amfTest['recall@20'].toFixed(4));
    expect(results).toContain(`commit <code>${gowalla.commit}</code>`);
  });

  it.skipIf(chromium === null)(
    `renders every page in headless Chromium without console errors (${chromium ?? 'no chromium: set CHROMIUM_PATH'}); screenshots in artifacts/`,
    async () => {
      const { chromium: playwright } = await import('playwright-core');
      const browser = await playwright.launch({
        executablePath: chromium!,
        args: ['--no-sandbox'],
      });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        const errors: string[] = [];
        page.on('console', (message) => {
          if (message.type() === 'error') errors.push(`${page.url()}: ${message.text()}`);
        });
        page.on('pageerror', (error) => errors.push(`${page.url()}: ${error.message}`));
        // A prefetch still in flight when the next page is opened is aborted by the browser
        // (net::ERR_ABORTED), which says nothing about the site; every other failure counts,
        // and so does any response of status 400 or more.
        page.on('requestfailed', (request) => {
          if (request.failure()?.errorText === 'net::ERR_ABORTED') return;
          errors.push(`${page.url()}: failed ${request.url()} (${request.failure()?.errorText})`);
        });
        page.on('response', (response) => {
          if (response.status() >= 400)
            errors.push(`${page.url()}: ${response.status()} for ${response.url()}`);
        });
        const { pages } = await crawl();
        for (const path of pages) {
          const response = await page.goto(base + path, { waitUntil: 'networkidle' });
          expect(response?.status(), path).toBe(200);
          expect(await page.locator('h1').count(), path).toBeGreaterThanOrEqual(1);
        }
        // Equations: MathJax SVG with real size on the concepts page.
        await page.goto(`${base}/concepts/adversarial-recommendation.html`, {
          waitUntil: 'networkidle',
        });
        const equations = page.locator('mjx-container svg');
        expect(await equations.count()).toBeGreaterThan(10);
        const box = await equations.first().boundingBox();
        expect(box!.width).toBeGreaterThan(20);
        // Plots: the results page's SVG figures with their series drawn.
        await page.goto(`${base}/results/`, { waitUntil: 'networkidle' });
        const plots = page.locator('figure.result-plot svg');
        expect(await plots.count()).toBeGreaterThanOrEqual(4);
        expect(await page.locator('figure.result-plot path.series').count()).toBeGreaterThanOrEqual(
          8,
        );
        const plotBox = await plots.first().boundingBox();
        expect(plotBox!.height).toBeGreaterThan(150);
        mkdirSync(artifacts, { recursive: true });
        for (const [path, name] of [
          ['/', 'home'],
          ['/guide/getting-started.html', 'guide'],
          ['/results/', 'results'],
          ['/packages/metrics.html', 'package'],
        ] as const) {
          await page.goto(base + path, { waitUntil: 'networkidle' });
          await page.screenshot({
            path: join(artifacts, `docs-${name}.png`),
            fullPage: name !== 'results',
          });
          // At 1280 px: no table or code block cut off at the column's edge (wide ones scroll
          // in their own box), and no raw JSON key path (`protocol.config.embeddingSize`) as a
          // table label.
          const layout = (await page.evaluate(LAYOUT_CHECK)) as {
            clipped: string[];
            rawKeys: string[];
          };
          expect(layout.clipped, `${path}: clipped`).toEqual([]);
          expect(layout.rawKeys, `${path}: raw keys`).toEqual([]);
        }
        // The home page says how to install and where the source is.
        await page.goto(`${base}/`, { waitUntil: 'networkidle' });
        expect(await page.locator('body').innerText()).toMatch(/pnpm@10\.34\.9 install/);
        expect(await page.locator('a[href^="https://github.com/"]').count()).toBeGreaterThan(0);
        expect(errors).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    180_000,
  );
});
