import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QUEUES, createLogger, createRedis, migrate, openDatabase } from '@shop/common';
import { freePort, startPrivatePostgres, startPrivateRedis, type PrivatePostgres, type PrivateRedis } from '@shop/common/test-servers';
import { users } from '@shop/users';
import { products } from '@shop/products';
import { orders } from '@shop/orders';
import { inventory } from '@shop/inventory';
import { ServiceProcess, type Death } from './service-process.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEFINITIONS = { users, products, orders, inventory } as const;
export type SubgraphName = keyof typeof DEFINITIONS;
export const SUBGRAPHS = Object.keys(DEFINITIONS) as SubgraphName[];
const QUEUE_PREFIX = 'faults';
export type ServiceName = SubgraphName | 'notify' | 'router';

/** A random secret of 64 characters, as `openssl rand -base64 48` gives. */
function secret(): string {
  return randomBytes(48).toString('base64');
}

/** Only what Node needs from the outer environment: no stray DATABASE_URL or REDIS_URL of the machine leaks in. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) if (process.env[name]) env[name] = process.env[name];
  return env;
}

/**
 * Creates a database per subgraph (`<prefix>_<subgraph>`) on the server, migrated and loaded with the demo data;
 * returns their URLs.
 */
export async function createDatabases(postgres: PrivatePostgres, prefix: string): Promise<Record<SubgraphName, string>> {
  const databaseUrls = {} as Record<SubgraphName, string>;
  for (const name of SUBGRAPHS) {
    databaseUrls[name] = postgres.url(`${prefix}_${name}`);
    await postgres.createDatabase(`${prefix}_${name}`);
    const db = await openDatabase({ url: databaseUrls[name] });
    try {
      await migrate(db, DEFINITIONS[name].migrations);
      await DEFINITIONS[name].seed(db);
    } finally {
      await db.close();
    }
  }
  return databaseUrls;
}

/** The environment every production process of the shop gets: fresh secrets, the Redis, the four databases. */
export function serviceEnv(redisUrl: string, queuePrefix: string, databaseUrls: Record<SubgraphName, string>): NodeJS.ProcessEnv {
  return {
    ...baseEnv(),
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    SEED_DEMO_DATA: 'false',
    IDENTITY_SECRET: secret(),
    JWT_SECRET: secret(),
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: queuePrefix,
    USERS_DATABASE_URL: databaseUrls.users,
    PRODUCTS_DATABASE_URL: databaseUrls.products,
    ORDERS_DATABASE_URL: databaseUrls.orders,
    INVENTORY_DATABASE_URL: databaseUrls.inventory,
    NOTIFICATION_WORKER_IN_PROCESS: 'false',
    // The reconciler that re-sends messages Redis lost (read by the outbox relays once it exists): short, so a
    // lost job comes back within the settle time.
    OUTBOX_RECONCILE_INTERVAL_MS: '2000',
    OUTBOX_RECONCILE_AGE_MS: '3000',
    OTEL_SDK_DISABLED: 'true',
    ...FaultStack.extraEnv(),
  };
}

/**
 * The whole shop as separate production processes on a PostgreSQL cluster and a redis-server of its own: users,
 * products, orders, inventory, the notification worker and the router, each on a loopback port.
 */
export class FaultStack {
  readonly services = new Map<ServiceName, ServiceProcess>();
  readonly deaths: Death[] = [];
  /** Whether placeOrder's input has `idempotencyKey` in the supergraph the router serves. */
  idempotencyKeys = false;

  /** Extra environment for every service, e.g. to try a setting: FAULTS_SERVICE_ENV='{"NAME":"value"}'. */
  static extraEnv(): NodeJS.ProcessEnv {
    const raw = process.env.FAULTS_SERVICE_ENV;
    if (!raw) return {};
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== 'object' || parsed === null) throw new Error('FAULTS_SERVICE_ENV must be a JSON object');
    return Object.fromEntries(Object.entries(parsed).map(([key, value]) => [key, String(value)]));
  }

  private constructor(
    readonly postgres: PrivatePostgres,
    readonly redis: PrivateRedis,
    readonly dir: string,
    readonly databaseUrls: Record<SubgraphName, string>,
  ) {}

  static async start(dir: string, log: (line: string) => void): Promise<FaultStack> {
    mkdirSync(path.join(dir, 'logs'), { recursive: true });
    // No AOF: a killed redis-server comes back without anything it held, as a failover to an empty replica would.
    const [postgres, redis] = await Promise.all([startPrivatePostgres(), startPrivateRedis({ appendonly: false })]);
    log(`PostgreSQL on 127.0.0.1:${postgres.port}, Redis on 127.0.0.1:${redis.port}, files in ${dir}`);
    const databaseUrls = {} as Record<SubgraphName, string>;
    for (const name of SUBGRAPHS) databaseUrls[name] = postgres.url(`faults_${name}`);
    const stack = new FaultStack(postgres, redis, dir, databaseUrls);
    try {
      await createDatabases(postgres, 'faults');
      log('databases migrated and seeded');
      await stack.startServices();
    } catch (error) {
      await stack.stop().catch(() => undefined);
      throw error;
    }
    return stack;
  }

  private async startServices(): Promise<void> {
    // The router serves a copy: the committed supergraph may change under a running test (the router watches it).
    const supergraph = path.join(this.dir, 'supergraph.graphql');
    copyFileSync(path.join(ROOT, 'schema/supergraph.graphql'), supergraph);
    this.idempotencyKeys = /input PlaceOrderInput[^}]*\bidempotencyKey\s*:/s.test(readFileSync(supergraph, 'utf8'));
    const ports = {} as Record<SubgraphName | 'router', number>;
    for (const name of [...SUBGRAPHS, 'router'] as const) ports[name] = await freePort();
    const subgraphUrl = (name: SubgraphName) => `http://127.0.0.1:${ports[name]}/graphql`;
    const shared = serviceEnv(this.redis.url, QUEUE_PREFIX, this.databaseUrls);
    const lookups = { USERS_SUBGRAPH_URL: subgraphUrl('users'), PRODUCTS_SUBGRAPH_URL: subgraphUrl('products') };
    const routerEnv: NodeJS.ProcessEnv = {
      SUPERGRAPH_PATH: supergraph,
      ...Object.fromEntries(SUBGRAPHS.map((name) => [`${name.toUpperCase()}_SUBGRAPH_URL`, subgraphUrl(name)])),
      // The load comes from one address at ~30 requests/s; the limit would answer 429 to most of it.
      RATE_LIMIT_MAX: '0',
      // A restarted subgraph is used again within a second.
      SUBGRAPH_BREAKER_COOLDOWN_MS: '1000',
      // Metrics on a free port of their own: 9464 may be another stack's.
      METRICS_PORT: '0',
    };
    const add = (name: ServiceName, entry: string, port: number | undefined, env: NodeJS.ProcessEnv = {}) =>
      this.services.set(
        name,
        new ServiceProcess({
          name,
          entry,
          cwd: ROOT,
          env: { ...shared, ...env, ...(port === undefined ? {} : { PORT: String(port) }) },
          port,
          probe: name === 'router' ? '/ready' : '/health',
          readyLine: 'notification worker started',
          logPath: path.join(this.dir, 'logs', `${name}.log`),
          onDeath: (death) => this.deaths.push(death),
        }),
      );
    add('users', 'subgraphs/users/src/main.ts', ports.users);
    add('products', 'subgraphs/products/src/main.ts', ports.products);
    add('orders', 'subgraphs/orders/src/main.ts', ports.orders, lookups);
    add('inventory', 'subgraphs/inventory/src/main.ts', ports.inventory);
    add('notify', 'subgraphs/users/src/worker-main.ts', undefined);
    add('router', 'router/src/main.ts', ports.router, routerEnv);
    const subgraphs = SUBGRAPHS.map((name) => this.service(name));
    await Promise.all([...subgraphs, this.service('notify')].map((service) => service.start()));
    await this.service('router').start();
  }

  service(name: ServiceName): ServiceProcess {
    const service = this.services.get(name);
    if (!service) throw new Error(`no service ${name}`);
    return service;
  }

  /** Jobs Redis holds per queue (waiting, active, delayed, prioritized), and its number of keys. */
  async queuedJobs(): Promise<Record<string, number>> {
    const redis = createRedis(this.redis.url, createLogger('faults', 'silent'), { blocking: true });
    try {
      const counts: Record<string, number> = {};
      for (const queue of Object.values(QUEUES)) {
        const base = `${QUEUE_PREFIX}:${queue}`;
        const sizes = await Promise.all([
          redis.llen(`${base}:wait`),
          redis.llen(`${base}:active`),
          redis.zcard(`${base}:delayed`),
          redis.zcard(`${base}:prioritized`),
        ]);
        counts[queue] = sizes.reduce((a, b) => a + b, 0);
      }
      counts.keys = await redis.dbsize();
      return counts;
    } finally {
      redis.disconnect();
    }
  }

  get routerUrl(): string {
    return `${this.service('router').url}/graphql`;
  }

  /** Stops every process (SIGTERM), then the servers; removes nothing (the logs stay for reading). */
  async stop(): Promise<void> {
    const services = [...this.services.values()];
    await this.services.get('router')?.stop();
    await Promise.all(services.map((service) => service.stop()));
    await Promise.all(services.map((service) => service.close()));
    await this.redis.stop();
    await this.postgres.stop();
  }
}
