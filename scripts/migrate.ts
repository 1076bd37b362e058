/**
 * `npm run migrate` (in the image: `node scripts/dist/migrate.js`): applies pending migrations to every subgraph's
 * database. Refuses embedded databases in production (see readMigrationTargets). Safe beside starting replicas: they
 * take the same advisory lock.
 */
import { ConfigError, prepareDatabase, readMigrationTargets } from '@shop/common';
import { SUBGRAPHS } from './subgraphs.js';

let targets;
try {
  targets = readMigrationTargets(SUBGRAPHS.map((s) => s.name));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`migrate: ${error.message}\n`);
  process.exit(1);
}
for (const [i, definition] of SUBGRAPHS.entries()) {
  const { db, applied } = await prepareDatabase(definition, targets[i]!);
  process.stdout.write(`${definition.name} (${db.kind}): ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}\n`);
  await db.close();
}
