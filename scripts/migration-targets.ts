import { ConfigError, defaultDataDir, readOptional, readString, readUrl } from '@shop/common';

/** Where `npm run migrate` applies one subgraph's migrations. */
export interface MigrationTarget {
  name: string;
  databaseUrl: string | undefined;
  dataDir: string;
}

/**
 * The database of every named subgraph, from `<NAME>_DATABASE_URL` (and `<NAME>_DATA_DIR` for embedded PGlite).
 * In production every subgraph must name a server: migrating an embedded database there would create one in the
 * migration's own container (a Job's, say), which no subgraph replica ever reads, and report success.
 * Only what migrating needs is read, so a migration Job needs no signing keys.
 */
export function migrationTargets(names: readonly string[], env: NodeJS.ProcessEnv = process.env): MigrationTarget[] {
  const production = readString(env, 'NODE_ENV', 'development') === 'production';
  const targets = names.map((name) => {
    const prefix = name.toUpperCase();
    return {
      name,
      databaseUrl: readUrl(env, `${prefix}_DATABASE_URL`, ['postgres:', 'postgresql:']),
      dataDir: readOptional(env, `${prefix}_DATA_DIR`) ?? defaultDataDir(name),
    };
  });
  const embedded = targets.filter((t) => !t.databaseUrl);
  if (production && embedded.length > 0) {
    throw new ConfigError(
      `NODE_ENV=production and no PostgreSQL server for ${embedded.map((t) => t.name).join(', ')}: set ` +
        `${embedded.map((t) => `${t.name.toUpperCase()}_DATABASE_URL`).join(', ')}. ` +
        'Migrating embedded PGlite in production would migrate a database no subgraph replica uses.',
    );
  }
  return targets;
}
