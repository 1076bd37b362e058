import type { ApolloServer, BaseContext } from '@apollo/server';
import { ConfigError, readBool, readOptional, readServiceConfig, readString, readUrl, type ServiceConfig } from './config.js';
import { defaultDataDir, migrate, openDatabase, type Database } from './db.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { unauthenticated } from './auth.js';
import { graphqlRequestListener, listen, probeRoutes, type Listening, type ReadinessCheck, type RequestInfo } from './http.js';
import { DEV_IDENTITY_SECRET, IDENTITY_HEADER, IdentityError, readIdentitySecret, verifyIdentity, type Identity } from './identity.js';
import { createLogger, type Logger } from './logger.js';
import { DEFAULT_REDIS_URL } from './redis.js';
import { ENTITY_CACHE_HEADER, type EntityInvalidator } from './entity-cache.js';
import { serveMetrics } from './metrics.js';
import { schemaOf } from './subgraph.js';
import { shutdownTelemetry } from './telemetry.js';
import { serveSubscriptions } from './websocket.js';

/** Background work a subgraph runs beside its HTTP server (queue workers, an outbox relay). */
export interface SubgraphRuntime {
  stop(): Promise<void>;
  /** Readiness checks of what the runtime depends on (e.g. Redis), added to the subgraph's /ready. */
  readiness?: Record<string, ReadinessCheck>;
  /** Extra HTTP routes (e.g. the JWKS of the users subgraph); return true when handled. */
  routes?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;
  /**
   * Announces committed changes of the subgraph's entities to the router's entity cache. When it is enabled the
   * subgraph's answers carry `x-shop-entity-cache`, and the subgraph must invalidate every change it commits.
   */
  invalidator?: EntityInvalidator;
}

/** A request as a subgraph sees it: who the router (or a trusted service) says is calling, null when anonymous. */
export interface SubgraphRequestInfo extends RequestInfo {
  identity: Identity | null;
}

/** What a subgraph package supplies; the rest of its life cycle is shared. */
export interface SubgraphDefinition<TContext extends BaseContext, TRuntime extends SubgraphRuntime = SubgraphRuntime> {
  /** Lower-case name, as in supergraph.yaml. */
  name: string;
  defaultPort: number;
  /** Folder of versioned `NNN_name.sql` migrations. */
  migrations: URL;
  /** Loads the demo data; must be idempotent. */
  seed(db: Database): Promise<{ inserted: number }>;
  createServer(production: boolean): ApolloServer<TContext>;
  /**
   * One-time set-up at start, after the migrations and demo data and before serving (e.g. the administrator the
   * operator asks for); reads its settings from env and must be safe when several replicas run it together.
   */
  bootstrap?(db: Database, env: NodeJS.ProcessEnv, log: Logger): Promise<void>;
  /** Starts background work once the database is ready; reads its settings from env. */
  startRuntime?(db: Database, env: NodeJS.ProcessEnv, log: Logger): Promise<TRuntime>;
  /** The per-request context; `runtime` is what startRuntime returned, if the subgraph has one. */
  createContext(db: Database, info: SubgraphRequestInfo, runtime: TRuntime | undefined): TContext;
}

/** Redis and queue settings shared by the processes that use BullMQ or pub/sub. */
export interface QueueConfig {
  redisUrl: string;
  /** Prefix of every BullMQ key and pub/sub channel, so several shops (or tests) can share one Redis. */
  prefix: string;
}

export function readQueueConfig(env: NodeJS.ProcessEnv = process.env): QueueConfig {
  return {
    redisUrl: readUrl(env, 'REDIS_URL', ['redis:', 'rediss:']) ?? DEFAULT_REDIS_URL,
    prefix: readOptional(env, 'QUEUE_PREFIX') ?? 'shop',
  };
}

export interface SubgraphConfig extends ServiceConfig {
  databaseUrl: string | undefined;
  dataDir: string;
  seedDemoData: boolean;
  /** Key of the identity header the router signs (IDENTITY_SECRET). */
  identitySecret: string;
}

export function readSubgraphConfig(
  name: string,
  defaultPort: number,
  env: NodeJS.ProcessEnv = process.env,
): SubgraphConfig {
  const service = readServiceConfig(env, defaultPort);
  const prefix = name.toUpperCase();
  return {
    ...service,
    databaseUrl: readUrl(env, `${prefix}_DATABASE_URL`, ['postgres:', 'postgresql:']),
    dataDir: readOptional(env, `${prefix}_DATA_DIR`) ?? defaultDataDir(name),
    seedDemoData: readBool(env, 'SEED_DEMO_DATA', !service.production),
    identitySecret: readIdentitySecret(env, service.production),
  };
}

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
export function readMigrationTargets(names: readonly string[], env: NodeJS.ProcessEnv = process.env): MigrationTarget[] {
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

/** Opens the subgraph's database and brings its schema up to date. */
export async function prepareDatabase(
  definition: Pick<SubgraphDefinition<BaseContext>, 'migrations'> & { name?: string },
  config: Pick<SubgraphConfig, 'databaseUrl' | 'dataDir'>,
): Promise<{ db: Database; applied: string[] }> {
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, name: definition.name });
  try {
    return { db, applied: await migrate(db, definition.migrations) };
  } catch (error) {
    await db.close();
    throw error;
  }
}

export interface RunningSubgraph {
  http: Listening;
  apollo: ApolloServer<BaseContext>;
  stop(): Promise<void>;
}

/** Starts the subgraph's HTTP server on a ready database. Used by main and by tests. */
export async function serveSubgraph<TContext extends BaseContext, TRuntime extends SubgraphRuntime>(
  definition: SubgraphDefinition<TContext, TRuntime>,
  db: Database,
  options: {
    port: number;
    host: string;
    production: boolean;
    log: Logger;
    runtime?: TRuntime | undefined;
    corsOrigins?: string[];
    bodyLimitBytes?: number;
    /** IDENTITY_SECRET; the public development key when absent. */
    identitySecret?: string;
  },
): Promise<RunningSubgraph> {
  const apollo = definition.createServer(options.production);
  await apollo.start();
  const secret = options.identitySecret ?? DEV_IDENTITY_SECRET;
  // Every request's identity is checked: a forged, expired or misdirected one refuses the request.
  const identify = (given: unknown, log: Logger): Identity | null => {
    if (given === undefined || given === null) return null;
    try {
      if (typeof given !== 'string') throw new IdentityError('identity is not a string');
      return verifyIdentity(given, definition.name, secret);
    } catch (error) {
      log.warn({ reason: (error as Error).message }, 'refused a request with an invalid identity');
      throw unauthenticated('The caller identity is invalid or expired; call through the router.', 401);
    }
  };
  const routes = options.runtime?.routes;
  // ping uses a connection of its own with short deadlines: a database that is down fails it within about a second.
  const probes = probeRoutes({ database: () => db.ping(), ...options.runtime?.readiness });
  const http = await listen(
    graphqlRequestListener(apollo, {
      log: options.log,
      corsOrigins: options.corsOrigins ?? [],
      // Local pages only in development, and only when cross-origin calls are allowed at all.
      allowLocalOrigins: !options.production && (options.corsOrigins ?? []).length > 0,
      bodyLimitBytes: options.bodyLimitBytes ?? 1_000_000,
      ...(options.runtime?.invalidator?.enabled ? { responseHeaders: { [ENTITY_CACHE_HEADER]: '1' } } : {}),
      routes: async (req, res) =>
        (await probes(req, res)) || (await serveMetrics(req, res)) || (routes ? await routes(req, res) : false),
      context: async (info) =>
        definition.createContext(db, { ...info, identity: identify(info.req.headers[IDENTITY_HEADER], info.log) }, options.runtime),
    }),
    options.port,
    options.host,
  );
  const schema = schemaOf(apollo);
  const websockets =
    schema?.getSubscriptionType() &&
    serveSubscriptions(http.server, schema, options.log, {
      identify: (given, log) => identify(given, log),
      context: (info) => definition.createContext(db, info, options.runtime),
    });
  return {
    http,
    apollo: apollo as unknown as ApolloServer<BaseContext>,
    async stop() {
      await websockets?.close();
      await http.close();
      await apollo.stop();
    },
  };
}

/**
 * Entry point of a subgraph process: config, migrations, demo data on an empty
 * database, HTTP, and a clean stop on SIGTERM or Ctrl-C.
 */
export async function runSubgraph<TContext extends BaseContext, TRuntime extends SubgraphRuntime>(
  definition: SubgraphDefinition<TContext, TRuntime>,
): Promise<void> {
  const config = readSubgraphConfig(definition.name, definition.defaultPort);
  const log = createLogger(definition.name, config.logLevel);
  const { db, applied } = await prepareDatabase(definition, config);
  log.info({ database: db.kind, applied }, 'database ready');
  if (config.seedDemoData) {
    // Only when SEED_DEMO_DATA asks for it in production: the demo accounts' passwords are public.
    if (config.production) log.warn('SEED_DEMO_DATA is on in production: the demo accounts and their public passwords are loaded');
    const { inserted } = await definition.seed(db);
    if (inserted > 0) log.info({ inserted }, 'demo data loaded');
  }
  await definition.bootstrap?.(db, process.env, log);
  const runtime = await definition.startRuntime?.(db, process.env, log);
  const running = await serveSubgraph(definition, db, { ...config, log, runtime });
  log.info({ url: running.http.url }, `${definition.name} subgraph ready`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await running.stop();
    await runtime?.stop();
    await db.close();
    await shutdownTelemetry();
    process.exit(0);
  };
  // `on`, not `once`: with no listener left, tsx's loader re-raises the signal and the process dies mid-stop.
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/** Runs a process entry point; a failure is logged and exits non-zero. */
export function main(name: string, run: () => Promise<void>): void {
  run().catch((error: unknown) => {
    process.stderr.write(`${name} failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}

/** What every subgraph resolver receives: its database, per-request loaders, the request's id, logger and caller. */
export interface SubgraphContext<TLoaders> {
  db: Database;
  loaders: TLoaders;
  requestId: string;
  log: Logger;
  /** Who is calling, as signed by the router or a trusted service; null when anonymous. */
  identity: Identity | null;
}

/** A context factory that builds fresh loaders for every request. */
export function contextWithLoaders<TLoaders>(
  createLoaders: (db: Database) => TLoaders,
): (db: Database, info: SubgraphRequestInfo) => SubgraphContext<TLoaders> {
  return (db, info) => ({ db, loaders: createLoaders(db), requestId: info.requestId, log: info.log, identity: info.identity });
}
