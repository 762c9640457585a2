// Child process for the kill test: extracts with the tiny CNN and SIGKILLs itself after
// `killAfter` batches (argv: model, images JSON, output, killAfter).
import { readFileSync } from 'node:fs';
import { extractFeatures } from '../extractor.js';

const [model, imagesFile, output, killAfter] = process.argv.slice(2);
let batches = 0;
await extractFeatures({
  model: model!,
  images: JSON.parse(readFileSync(imagesFile!, 'utf8')) as { itemId: string; file: string }[],
  output: output!,
  preprocessing: { resize: 18, crop: 16 },
  tensor: 'features',
  batchSize: 3,
  threads: 1,
  onProgress: () => {
    if (++batches === Number(killAfter)) process.kill(process.pid, 'SIGKILL');
  },
});
