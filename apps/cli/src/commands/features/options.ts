/**
 * `advrec features`: its options, defined without loading the command's implementation (it is
 * imported when the command runs), so that `advrec --help` starts fast.
 */
import { Option } from 'commander';
import type { CliCommand } from '../../command.js';
import { integer } from '../../options.js';

/** `advrec features`: its options and action. */
export const featuresCli: CliCommand = {
  register(program, run) {
    program
      .command('features')
      .description('extract CNN image features (ONNX model) for a folder of item images, resumable')
      .requiredOption(
        '-m, --model <file>',
        'ONNX model file (ResNet-50 v1 from the ONNX model zoo: its 2048-d pooled layer is found by name; any CNN with --tensor)',
      )
      .requiredOption('-i, --images <folder>', 'folder of images named <item id>.jpg/.png/.webp')
      .requiredOption('-o, --out <file>', 'output .npy (a .manifest.json is written beside it)')
      .option('--tensor <name>', 'feature tensor (an output, or an intermediate tensor, pooled)')
      .option('--input <name>', 'input tensor name')
      .option(
        '--extractor <name>',
        'a known extractor (resnet50-v1, mobilenetv2-12-int8): its feature tensor and input',
      )
      .option(
        '--batch-size <n>',
        'images per inference batch (default 32)',
        integer('--batch-size', 1),
      )
      .addOption(new Option('--dtype <dtype>', 'stored precision').choices(['float32', 'float16']))
      .option(
        '--id-offset <n>',
        'add this to numeric file names to get item ids (ML-1M posters: -1)',
        integer('--id-offset'),
      )
      .option('--threads <n>', 'onnxruntime intra-op threads', integer('--threads', 1))
      .option('--limit <n>', 'only the first n images (in numeric order)', integer('--limit', 1))
      .option(
        '--shards <n>',
        'cut the images into n shards of whole batches, extracted by workers and merged (same bytes as one run)',
        integer('--shards', 1),
      )
      .option(
        '--workers <n>',
        'shards at once in the in-process pool (each in its own thread)',
        integer('--workers', 1),
      )
      .option(
        '--queue <url>',
        'a Redis URL: put the shards on a job queue served by `advrec worker` processes (default 8 shards)',
      )
      .option('--queue-name <name>', 'queue name (default advrec)')
      .option(
        '--queue-wait <seconds>',
        'how long a Redis server that stopped answering is waited for before giving up with exit code 6 (default 30)',
        integer('--queue-wait', 1),
      )
      .action(
        run(async (context, flags) => (await import('./run.js')).featuresCommand(flags, context)),
      );
  },
};
