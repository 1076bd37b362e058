import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SIZES, prepareDatabase } from '@shop/common';
import { SUBGRAPHS } from '../subgraphs.js';

/**
 * Replicas that start together on a fresh PostgreSQL database: each migrates and seeds as a subgraph's start-up does
 * (prepareDatabase, then seed), all at once, each through a connection pool of its own. Every replica must start,
 * every migration be applied and recorded once, and the demo data be inserted once. Needs a server: PGlite belongs to
 * one process, so replicas never share one.
 */
const adminUrl = process.env.TEST_DATABASE_URL;
const REPLICAS = 4;
const databases = new Map<string, string>();

/** Rows a seed of each subgraph inserts on an empty database, by what its tables hold afterwards. */
const SEEDED_ROWS: Record<string, string> = {
  users: 'SELECT count(*)::int AS n FROM users',
  products: 'SELECT count(*)::int AS n FROM products',
  inventory: 'SELECT count(*)::int AS n FROM stock',
  orders: 'SELECT ((SELECT count(*) FROM orders) + (SELECT count(*) FROM order_items))::int AS n',
};

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  if (!adminUrl) return;
  const suffix = Math.random().toString(16).slice(2, 10);
  await admin(async (client) => {
    for (const { name } of SUBGRAPHS) {
      const database = `shop_test_replicas_${name}_${suffix}`;
      await client.query(`CREATE DATABASE ${database}`);
      const url = new URL(adminUrl);
      url.pathname = `/${database}`;
      databases.set(name, url.toString());
    }
  });
});

afterAll(async () => {
  if (databases.size === 0) return;
  await admin(async (client) => {
    for (const url of databases.values()) await client.query(`DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)} WITH (FORCE)`);
  });
});

describe.skipIf(!adminUrl)(`${REPLICAS} replicas of every subgraph starting together on a fresh database`, () => {
  it('all start; each migration is applied and recorded once; the demo data is inserted once', { timeout: 120_000 }, async () => {
    const started = await Promise.allSettled(
      SUBGRAPHS.flatMap((definition) =>
        Array.from({ length: REPLICAS }, async () => {
          const { db, applied } = await prepareDatabase(definition, { databaseUrl: databases.get(definition.name), dataDir: '' });
          try {
            const { inserted } = await definition.seed(db);
            return { name: definition.name, applied, inserted };
          } finally {
            await db.close();
          }
        }),
      ),
    );
    const failures = started.flatMap((s) => (s.status === 'rejected' ? [String((s.reason as Error).message ?? s.reason)] : []));
    expect(failures).toEqual([]);
    const replicas = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));

    for (const definition of SUBGRAPHS) {
      const mine = replicas.filter((r) => r.name === definition.name);
      expect(mine).toHaveLength(REPLICAS);
      const files = (await readdir(fileURLToPath(definition.migrations))).filter((f) => /^\d+_.+\.sql$/.test(f)).map((f) => f.replace(/\.sql$/, '')).sort();
      // Each version applied by exactly one replica.
      expect(mine.flatMap((r) => r.applied).sort(), definition.name).toEqual(files);
      const db = new pg.Client({ connectionString: databases.get(definition.name) });
      await db.connect();
      try {
        const recorded = await db.query<{ version: string; n: number }>('SELECT version, count(*)::int AS n FROM schema_migrations GROUP BY version ORDER BY version');
        expect(recorded.rows.map((r) => r.version), definition.name).toEqual(files);
        const [rows] = (await db.query<{ n: number }>(SEEDED_ROWS[definition.name]!)).rows;
        // What the replicas say they inserted is what the tables hold: nothing inserted twice, nothing missing.
        expect(mine.reduce((sum, r) => sum + r.inserted, 0), definition.name).toBe(rows!.n);
        expect(rows!.n, definition.name).toBeGreaterThan(0);
        if (definition.name === 'users') expect(rows!.n).toBe(DEMO_SIZES.users + 1);
        if (definition.name === 'products') expect(rows!.n).toBe(DEMO_SIZES.products);
      } finally {
        await db.end();
      }
    }
  });
});
