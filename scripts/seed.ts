/** `npm run seed`: migrates, then loads the demo data; rows already there are kept, never duplicated. */
import { readSubgraphConfig, prepareDatabase } from '@shop/common';
import { SUBGRAPHS } from './subgraphs.js';

for (const definition of SUBGRAPHS) {
  const config = readSubgraphConfig(definition.name, definition.defaultPort);
  const { db } = await prepareDatabase(definition, config);
  try {
    const { inserted } = await definition.seed(db);
    process.stdout.write(`${definition.name} (${db.kind}): ${inserted} row(s) inserted\n`);
  } finally {
    await db.close();
  }
}
