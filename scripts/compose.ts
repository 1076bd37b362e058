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
import { parse } from 'graphql';
import { composeServices } from '@apollo/composition';
import { readSupergraphConfig } from './supergraph-config.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    check: { type: 'boolean', default: false },
    config: { type: 'string', default: path.join(root, 'supergraph.yaml') },
    out: { type: 'string', default: path.join(root, 'schema', 'supergraph.graphql') },
  },
});

const config = await readSupergraphConfig(values.config);
const services = await Promise.all(
  config.subgraphs.map(async (s) => {
    const sdl = await readFile(s.schemaFile, 'utf8');
    try {
      return { name: s.name, url: s.url, typeDefs: parse(sdl) };
    } catch (error) {
      process.stderr.write(`${s.name}: ${path.relative(root, s.schemaFile)} does not parse: ${String(error)}\n`);
      process.exit(1);
    }
  }),
);

const result = composeServices(services);
if (result.errors) {
  process.stderr.write(`Composition failed with ${result.errors.length} error(s):\n`);
  for (const error of result.errors) {
    const code = (error.extensions?.code as string | undefined) ?? 'ERROR';
    process.stderr.write(`  [${code}] ${error.message}\n`);
  }
  process.exit(1);
}

const text = result.supergraphSdl.endsWith('\n') ? result.supergraphSdl : `${result.supergraphSdl}\n`;
const target = path.relative(root, values.out);
if (values.check) {
  const committed = await readFile(values.out, 'utf8').catch(() => '');
  if (committed !== text) {
    process.stderr.write(`${target} is stale: run npm run compose and commit the result\n`);
    process.exit(1);
  }
  process.stdout.write(`${target} is up to date (${services.length} subgraphs)\n`);
} else {
  await mkdir(path.dirname(values.out), { recursive: true });
  await writeFile(values.out, text);
  const hints = result.hints.length > 0 ? `, ${result.hints.length} hint(s)` : '';
  process.stdout.write(`Composed ${services.length} subgraphs into ${target}${hints}\n`);
}
