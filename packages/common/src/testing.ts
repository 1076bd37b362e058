import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { BaseContext } from '@apollo/server';
import { DEMO_ADMIN } from './auth.js';
import { migrate, openDatabase, type Database } from './db.js';
import { DEV_IDENTITY_SECRET, IDENTITY_HEADER, signIdentity, type Identity } from './identity.js';
import { createLogger, type Logger } from './logger.js';
import { serveSubgraph, type RunningSubgraph, type SubgraphDefinition, type SubgraphRuntime } from './service.js';

/**
 * A database of the test's own: a fresh database on the server named by
 * TEST_DATABASE_URL (dropped again by `drop`), or an in-memory PGlite.
 */
export interface TestDatabase {
  db: Database;
  /** The database's URL on the server, for other processes; absent for PGlite. */
  url?: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    const db = await openDatabase({ dataDir: 'memory://', name: label });
    return { db, drop: () => db.close() };
  }
  const name = `shop_test_${label.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = await openDatabase({ url: url.toString(), poolSize: 5, name: label });
  return {
    db,
    url: url.toString(),
    async drop() {
      await db.close();
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export interface TestSubgraph extends RunningSubgraph {
  db: Database;
  /** The subgraph's background work, when it has any. */
  runtime?: SubgraphRuntime | undefined;
  url: string;
  /** Headers that make a request to this subgraph come from `identity`, signed as the router signs them. */
  as(identity: Identity): Record<string, string>;
  /** Stops the server and drops its database. */
  close(): Promise<void>;
}

/** The seeded administrator, as an identity. */
export const ADMIN: Identity = { sub: DEMO_ADMIN.id, role: 'ADMIN' };

/** A customer identity for a user id. */
export const customer = (userId: string): Identity => ({ sub: userId, role: 'CUSTOMER' });

/** The identity header for a call to subgraph `audience`, signed with `secret` (the development key by default). */
export function identityHeaders(audience: string, identity: Identity, secret = DEV_IDENTITY_SECRET): Record<string, string> {
  return { [IDENTITY_HEADER]: signIdentity(identity, audience, secret) };
}

/**
 * A subgraph on an ephemeral loopback port with its own migrated database. `runtime: false` starts it without its
 * runtime (no Redis, no background work), as a process started without one runs.
 */
export async function startTestSubgraph<TContext extends BaseContext, TRuntime extends SubgraphRuntime>(
  definition: SubgraphDefinition<TContext, TRuntime>,
  options: { seed?: boolean; port?: number; log?: Logger; env?: NodeJS.ProcessEnv; runtime?: boolean } = {},
): Promise<TestSubgraph & { runtime: TRuntime | undefined }> {
  const { db, drop } = await createTestDatabase(definition.name);
  await migrate(db, definition.migrations);
  if (options.seed) await definition.seed(db);
  const log = options.log ?? createLogger(definition.name, 'silent');
  const startRuntime = options.runtime === false ? undefined : definition.startRuntime;
  // A runtime never uses the real queues: without a prefix from the caller it gets one of its own.
  let env = options.env ?? {};
  let ownRedis: TestRedis | undefined;
  if (startRuntime && !env.QUEUE_PREFIX) {
    ownRedis = await createTestRedis(definition.name);
    env = { ...env, REDIS_URL: ownRedis.url, QUEUE_PREFIX: ownRedis.prefix };
  }
  const runtime = await startRuntime?.(db, env, log);
  const running = await serveSubgraph(definition, db, {
    port: options.port ?? 0,
    host: '127.0.0.1',
    production: false,
    log,
    runtime,
  });
  return {
    ...running,
    db,
    runtime,
    url: running.http.url,
    as: (identity) => identityHeaders(definition.name, identity),
    async close() {
      await running.stop();
      await runtime?.stop();
      await drop();
      await ownRedis?.cleanup();
    },
  };
}

/**
 * Resolves once the subgraph's /ready answers 200: its runtime's Redis connection is up, so a change it announces
 * right away reaches Redis (one made before would be logged as not announced).
 */
export async function untilReady(subgraph: Pick<TestSubgraph, 'url'>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(new URL('/ready', subgraph.url));
    await response.arrayBuffer();
    const { status } = response;
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${subgraph.url} is not ready after ${timeoutMs} ms (last status ${status})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A subgraph with its runtime on a Redis prefix of the test's own, and the same subgraph started without one. */
export interface SubgraphPair<TRuntime extends SubgraphRuntime> {
  redis: TestRedis;
  /** With its runtime, ready: its Redis connection is up. */
  subgraph: TestSubgraph & { runtime: TRuntime | undefined };
  /** Without a runtime (no Redis, no background work), on a database of its own, as a process without one runs. */
  bare: TestSubgraph;
  /** Stops both, drops their databases and deletes the prefix's keys. */
  close(): Promise<void>;
}

/** Starts a SubgraphPair, e.g. to check that only the one with Redis says it keeps the entity cache contract. */
export async function startWithAndWithoutRuntime<TContext extends BaseContext, TRuntime extends SubgraphRuntime>(
  definition: SubgraphDefinition<TContext, TRuntime>,
  label: string,
  options: { seed?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<SubgraphPair<TRuntime>> {
  const redis = await createTestRedis(label);
  const [subgraph, bare] = await Promise.all([
    startTestSubgraph(definition, { seed: options.seed, env: { ...options.env, REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix } }),
    startTestSubgraph(definition, { seed: options.seed, runtime: false }),
  ]);
  await untilReady(subgraph);
  return {
    redis,
    subgraph,
    bare,
    async close() {
      await subgraph.close();
      await bare.close();
      await redis.cleanup();
    },
  };
}

export interface GraphQLResponse<TData = Record<string, unknown>> {
  data?: TData | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

/**
 * POSTs an operation as a frontend would and returns the parsed body. `headers` may carry a bearer
 * token (through the router) or a subgraph's `as(identity)` headers (straight to a subgraph).
 */
export async function graphql<TData = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<TData> & { status: number; headers: Headers }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as GraphQLResponse<TData>;
  return { ...body, status: response.status, headers: response.headers };
}

/** Runs fn and returns how many SQL statements it caused on db. */
export async function countStatements(db: Database, fn: () => Promise<unknown>): Promise<number> {
  const before = db.statementCount;
  await fn();
  return db.statementCount - before;
}

/**
 * A Redis key prefix of the test's own on REDIS_URL (default 127.0.0.1:6379).
 * `cleanup` deletes only keys under that prefix: tests never touch others' keys.
 */
export interface TestRedis {
  url: string;
  prefix: string;
  cleanup(): Promise<void>;
}

/** Runs fn on every batch of keys matching `pattern`, on a short-lived connection to `url`. */
async function forEachKeys(url: string, pattern: string, fn: (redis: Redis, keys: string[]) => Promise<unknown>): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await fn(redis, keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export async function createTestRedis(label: string): Promise<TestRedis> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `shoptest:${label}:${randomBytes(4).toString('hex')}`;
  return {
    url,
    prefix,
    cleanup: () => forEachKeys(url, `${prefix}:*`, (redis, keys) => redis.del(...keys)),
  };
}

/**
 * The entity generations under the test's prefix, by `<subgraph>:<Type>:<id>`: what the subgraphs incremented at
 * `<prefix>:entity-gen:<subgraph>:<Type>:<id>` (spelled out here, not taken from entity-cache.ts, so a test checks
 * the keys).
 * Other keys there (the router's epoch) are left out.
 */
export async function entityGenerations(redis: TestRedis): Promise<Record<string, number>> {
  const marker = `${redis.prefix}:entity-gen:`;
  const generations: Record<string, number> = {};
  await forEachKeys(redis.url, `${marker}*:*`, async (client, keys) => {
    const values = await client.mget(...keys);
    keys.forEach((key, i) => (generations[key.slice(marker.length)] = Number(values[i])));
  });
  return generations;
}

/** Runs fn and returns its result with how much each entity generation it changed grew, e.g. `{ 'inventory:Product:<id>': 1 }`. */
export async function generationChanges<T>(
  redis: TestRedis,
  fn: () => Promise<T>,
): Promise<{ result: T; changed: Record<string, number> }> {
  const before = await entityGenerations(redis);
  const result = await fn();
  const after = await entityGenerations(redis);
  const changed = Object.entries(after)
    .map(([entity, generation]) => [entity, generation - (before[entity] ?? 0)] as const)
    .filter(([, grown]) => grown !== 0);
  return { result, changed: Object.fromEntries(changed) };
}
