import { defineConfig } from 'vitepress';
import { PACKAGES as packages } from '../scripts/packages.js';

export default defineConfig({
  title: 'advrec',
  description:
    'Adversarial learning for recommender models in TypeScript: APR, AMR, robust evaluation.',
  lang: 'en',
  head: [['link', { rel: 'icon', type: 'image/svg+xml', href: '/favicon.svg' }]],
  cleanUrls: false,
  // Every internal link is checked at build time: a dead one fails the build.
  ignoreDeadLinks: false,
  markdown: { math: true },
  srcExclude: ['README.md', 'node_modules/**', '.examples/**'],
  themeConfig: {
    nav: [
      { text: 'Guide', link: '/guide/getting-started' },
      { text: 'Concepts', link: '/concepts/adversarial-recommendation' },
      { text: 'Reference', link: '/reference/cli' },
      { text: 'Results', link: '/results/' },
    ],
    sidebar: [
      {
        text: 'Guide',
        items: [
          { text: 'Getting started', link: '/guide/getting-started' },
          { text: 'Command line', link: '/guide/cli' },
          { text: 'Training a good model fast', link: '/guide/fast-training' },
          { text: 'Image-aware recommendation', link: '/guide/image-aware' },
          { text: 'Robustness audits', link: '/guide/robustness-audits' },
          { text: 'Sequential recommendation and ATSRec', link: '/guide/sequential' },
          { text: 'Sweeps and many machines', link: '/guide/many-machines' },
          { text: 'Writing plugins', link: '/guide/plugins' },
          { text: 'Measured results', link: '/guide/results' },
        ],
      },
      {
        text: 'Concepts',
        items: [
          { text: 'BPR, APR and AMR', link: '/concepts/adversarial-recommendation' },
          { text: 'Evaluation protocols', link: '/concepts/evaluation' },
        ],
      },
      {
        text: 'Packages',
        items: packages.map((name) => ({ text: `@advrec/${name}`, link: `/packages/${name}` })),
      },
      {
        text: 'Reference',
        items: [
          { text: 'CLI reference', link: '/reference/cli' },
          { text: 'Config reference', link: '/reference/config' },
          { text: 'API reference', link: '/api/' },
          ...packages.map((name) => ({ text: `API: @advrec/${name}`, link: `/api/${name}` })),
        ],
      },
      { text: 'Results', items: [{ text: 'Reproduced results', link: '/results/' }] },
    ],
    search: { provider: 'local' },
    outline: [2, 3],
  },
});
