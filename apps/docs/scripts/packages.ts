/** The library packages the site documents, in dependency order (pages, API reference, sidebar). */
export const PACKAGES = [
  'data',
  'onnx',
  'models',
  'losses',
  'adversary',
  'trainer',
  'metrics',
  'features',
  'sweep',
] as const;
