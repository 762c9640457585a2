// Generates schema/run-config.schema.json from the RunConfig type in src/config-types.ts.
// `--check` exits 1 when the committed schema differs from the generated one.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGenerator } from 'ts-json-schema-generator';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const output = join(root, 'schema', 'run-config.schema.json');

export function generateSchema() {
  const schema = createGenerator({
    path: join(root, 'src', 'config-types.ts'),
    tsconfig: join(root, 'tsconfig.json'),
    type: 'RunConfig',
    additionalProperties: false,
    skipTypeCheck: true,
  }).createSchema('RunConfig');
  schema.$id = 'https://advrec.dev/schema/run-config.schema.json';
  schema.title = 'advrec run configuration';
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = generateSchema();
  if (process.argv.includes('--check')) {
    const current = readFileSync(output, 'utf8');
    if (current !== text) {
      console.error(`${output} is stale: run pnpm --filter advrec schema`);
      process.exit(1);
    }
  } else {
    mkdirSync(dirname(output), { recursive: true });
    writeFileSync(output, text);
    console.log(`wrote ${output}`);
  }
}
