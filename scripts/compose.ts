/**
 * Composes the subgraph schemas listed in supergraph.yaml into
 * schema/supergraph.graphql with @apollo/composition (no network, no rover).
 *   npm run compose            write the supergraph
 *   npm run compose:check      fail when the committed supergraph is stale
 * Options: --config <file> (default supergraph.yaml), --out <file>.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { composeSubgraphs, readSupergraphConfig } from './supergraph-config.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    check: { type: 'boolean', default: false },
    config: { type: 'string', default: path.join(root, 'supergraph.yaml') },
    out: { type: 'string', default: path.join(root, 'schema', 'supergraph.graphql') },
  },
});

const config = await readSupergraphConfig(values.config);
const result = await composeSubgraphs(config.subgraphs);
if ('errors' in result) {
  process.stderr.write(`Composition failed with ${result.errors.length} error(s):\n`);
  for (const error of result.errors) process.stderr.write(`  ${error}\n`);
  process.exit(1);
}

const target = path.relative(root, values.out);
if (values.check) {
  const committed = await readFile(values.out, 'utf8').catch(() => '');
  if (committed !== result.supergraphSdl) {
    process.stderr.write(`${target} is stale: run npm run compose and commit the result\n`);
    process.exit(1);
  }
  process.stdout.write(`${target} is up to date (${config.subgraphs.length} subgraphs)\n`);
} else {
  await mkdir(path.dirname(values.out), { recursive: true });
  await writeFile(values.out, result.supergraphSdl);
  const hints = result.hints > 0 ? `, ${result.hints} hint(s)` : '';
  process.stdout.write(`Composed ${config.subgraphs.length} subgraphs into ${target}${hints}\n`);
}
