import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { SubgraphUrls } from './direct.js';
import { ROOT, startService, type Service } from './processes.js';

export const SUBGRAPHS = ['users', 'products', 'orders', 'inventory'] as const;
export type SubgraphName = (typeof SUBGRAPHS)[number];

/**
 * Where the bench keeps its data: databases of its own on the PostgreSQL server of
 * BENCH_DATABASE_URL (created here, dropped in `cleanup`), or embedded PGlite in a
 * temporary directory; and a Redis key prefix of its own on REDIS_URL (default
 * 127.0.0.1:6379) whose keys `cleanup` deletes. Nothing else is touched.
 */
export interface BenchStorage {
  kind: 'postgres' | 'pglite';
  env: NodeJS.ProcessEnv;
  redisUrl: string;
  prefix: string;
  /** A fresh database of the bench's own for one more purpose (the worker scenario): its URL, or a PGlite directory. */
  extraDatabase(label: string): Promise<{ url?: string; dataDir?: string }>;
  cleanup(): Promise<void>;
}

export async function createStorage(env: NodeJS.ProcessEnv = process.env): Promise<BenchStorage> {
  const run = randomBytes(4).toString('hex');
  const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `shopbench:${run}`;
  const adminUrl = env.BENCH_DATABASE_URL;
  const created: string[] = [];
  const tmp = await mkdtemp(path.join(tmpdir(), 'shop-bench-'));
  const admin = async <T>(fn: (client: pg.Client) => Promise<T>) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  const database = async (label: string): Promise<{ url?: string; dataDir?: string }> => {
    if (!adminUrl) return { dataDir: path.join(tmp, label) };
    const name = `shop_bench_${label}_${run}`;
    await admin((c) => c.query(`CREATE DATABASE ${name}`));
    created.push(name);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return { url: url.toString() };
  };
  const storageEnv: NodeJS.ProcessEnv = { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix };
  for (const name of SUBGRAPHS) {
    const db = await database(name);
    if (db.url) storageEnv[`${name.toUpperCase()}_DATABASE_URL`] = db.url;
    else storageEnv[`${name.toUpperCase()}_DATA_DIR`] = db.dataDir;
  }
  return {
    kind: adminUrl ? 'postgres' : 'pglite',
    env: storageEnv,
    redisUrl,
    prefix,
    extraDatabase: database,
    async cleanup() {
      if (created.length > 0) await admin(async (c) => {
        for (const name of created) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
      await rm(tmp, { recursive: true, force: true });
      await deleteKeys(redisUrl, prefix);
    },
  };
}

/** Deletes the keys under one prefix (the bench's), never others. */
export async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export interface BenchStack {
  subgraphs: Record<SubgraphName, Service>;
  urls: SubgraphUrls;
  /** The committed supergraph with the routing URLs of this stack's subgraphs, for the router and the baseline alike. */
  supergraphPath: string;
}

/** The four subgraphs as separate processes, each migrating and seeding its own database at start. */
export async function startSubgraphs(
  storage: BenchStorage,
  workDir: string,
  nodeArgs: (name: SubgraphName) => string[] = () => [],
): Promise<BenchStack> {
  const env: NodeJS.ProcessEnv = {
    ...storage.env,
    SEED_DEMO_DATA: 'true',
    // The bench measures the worker on its own; the users subgraph only queues notifications.
    NOTIFICATION_WORKER_IN_PROCESS: 'false',
  };
  const start = (name: SubgraphName, extra: NodeJS.ProcessEnv = {}) =>
    startService(name, `subgraphs/${name}/src/main.ts`, { ...env, ...extra }, { healthPath: '/ready', timeoutMs: 300_000, nodeArgs: nodeArgs(name) });
  const [users, products, inventory] = await Promise.all([start('users'), start('products'), start('inventory')]);
  const orders = await start('orders', {
    USERS_SUBGRAPH_URL: `${users.origin}/graphql`,
    PRODUCTS_SUBGRAPH_URL: `${products.origin}/graphql`,
  });
  const subgraphs = { users, products, orders, inventory };
  const urls = Object.fromEntries(SUBGRAPHS.map((name) => [name, `${subgraphs[name].origin}/graphql`])) as SubgraphUrls;
  let sdl = await readFile(path.join(ROOT, 'schema/supergraph.graphql'), 'utf8');
  for (const name of SUBGRAPHS) {
    sdl = sdl.replace(new RegExp(`(@join__graph\\(name: "${name}", url: ")[^"]*(")`), `$1${urls[name]}$2`);
  }
  const supergraphPath = path.join(workDir, 'supergraph.graphql');
  await writeFile(supergraphPath, sdl);
  return { subgraphs, urls, supergraphPath };
}
