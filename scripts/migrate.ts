/** `npm run migrate`: applies pending migrations to every subgraph's database. */
import { readSubgraphConfig, prepareDatabase } from '@shop/common';
import { SUBGRAPHS } from './subgraphs.js';

for (const definition of SUBGRAPHS) {
  const config = readSubgraphConfig(definition.name, definition.defaultPort);
  const { db, applied } = await prepareDatabase(definition, config);
  process.stdout.write(`${definition.name} (${db.kind}): ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}\n`);
  await db.close();
}
