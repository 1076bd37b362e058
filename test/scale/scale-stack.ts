import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { freePort, startPrivatePostgres, startPrivateRedis, type PrivatePostgres, type PrivateRedis } from '@shop/common/test-servers';
import { ROOT, SUBGRAPHS, createDatabases, serviceEnv, type SubgraphName } from '../faults/fault-stack.js';
import { ServiceProcess, type Death } from '../faults/service-process.js';
import { Haproxy, type Tier } from './haproxy.js';

const QUEUE_PREFIX = 'scale';
export const REPLICAS = 2;
export type TierName = SubgraphName | 'router' | 'notify';
/** Tiers in the order the faults visit them. */
export const TIERS: readonly TierName[] = ['router', 'users', 'products', 'orders', 'inventory', 'notify'];

/**
 * How long the test's clients wait for an answer: as long as HAProxy waits for a router (`timeout server`). On a
 * starved machine a router answers in seconds while another one starts; a slow answer is not a failed one.
 */
export const CLIENT_TIMEOUT_MS = 45_000;

/** The routers' rate limit: low enough for a test to exceed it, high for the load's clients (one address per customer). */
export const RATE_LIMIT = { max: 100, windowMs: 10_000 } as const;

const ENTRIES: Record<TierName, string> = {
  router: 'router/src/main.ts',
  users: 'subgraphs/users/src/main.ts',
  products: 'subgraphs/products/src/main.ts',
  orders: 'subgraphs/orders/src/main.ts',
  inventory: 'subgraphs/inventory/src/main.ts',
  notify: 'subgraphs/users/src/worker-main.ts',
};

/** One replica: its process and, for those with HTTP, its server name in HAProxy. */
export interface Replica {
  tier: TierName;
  /** `<tier>-<n>`, as in HAProxy's backend and the log file's name. */
  name: string;
  process: ServiceProcess;
  port: number | undefined;
}

/**
 * The shop scaled out: two routers, two replicas of each subgraph and two notification workers, each its own
 * production process, on a private PostgreSQL and redis-server, with HAProxy in front of every HTTP tier. Clients
 * use the router frontend; routers and the orders subgraph reach subgraphs through their frontends.
 */
export class ScaleStack {
  readonly replicas: Replica[] = [];
  readonly deaths: Death[] = [];

  private constructor(
    readonly postgres: PrivatePostgres,
    readonly redis: PrivateRedis,
    readonly dir: string,
    readonly databaseUrls: Record<SubgraphName, string>,
    readonly frontends: Record<Exclude<TierName, 'notify'>, number>,
    readonly haproxy: Haproxy,
  ) {}

  static async start(dir: string, log: (line: string) => void): Promise<ScaleStack> {
    mkdirSync(path.join(dir, 'logs'), { recursive: true });
    // AOF on, as production runs Redis (this test kills no Redis).
    const [postgres, redis] = await Promise.all([startPrivatePostgres(), startPrivateRedis({ appendonly: true })]);
    log(`PostgreSQL on 127.0.0.1:${postgres.port}, Redis on 127.0.0.1:${redis.port}, files in ${dir}`);
    let haproxy: Haproxy | undefined;
    try {
      // Migrated and seeded once, before any replica starts.
      const databaseUrls = await createDatabases(postgres, 'scale');
      log('databases migrated and seeded');
      const frontends = {} as Record<Exclude<TierName, 'notify'>, number>;
      const tiers: Tier[] = [];
      const ports = new Map<string, number>();
      for (const tier of ['router', ...SUBGRAPHS] as const) {
        frontends[tier] = await freePort();
        const servers = [];
        for (let n = 1; n <= REPLICAS; n++) {
          const name = `${tier}-${n}`;
          ports.set(name, await freePort());
          servers.push({ name, port: ports.get(name)! });
        }
        tiers.push({ name: tier, frontendPort: frontends[tier], servers, check: '/ready', forwardFor: tier === 'router' });
      }
      haproxy = await Haproxy.start(tiers, dir);
      log(`HAProxy: ${tiers.map((t) => `${t.name} :${t.frontendPort}`).join(', ')}; stats :${haproxy.statsPort}`);
      const stack = new ScaleStack(postgres, redis, dir, databaseUrls, frontends, haproxy);
      stack.define(ports);
      await stack.startAll(log);
      return stack;
    } catch (error) {
      await haproxy?.stop().catch(() => undefined);
      await redis.stop().catch(() => undefined);
      await postgres.stop().catch(() => undefined);
      throw error;
    }
  }

  /** `http://127.0.0.1:<frontend>/graphql` of a tier. */
  frontendUrl(tier: Exclude<TierName, 'notify'>): string {
    return `http://127.0.0.1:${this.frontends[tier]}/graphql`;
  }

  /** The router replicas' own addresses, for checks that must name the router they go through. */
  routerUrls(): string[] {
    return this.tier('router').map((replica) => `${replica.process.url}/graphql`);
  }

  tier(name: TierName): Replica[] {
    return this.replicas.filter((replica) => replica.tier === name);
  }

  private define(ports: Map<string, number>): void {
    const shared = serviceEnv(this.redis.url, QUEUE_PREFIX, this.databaseUrls);
    // The router serves a copy: the committed supergraph may change under a running test (the router watches it).
    const supergraph = path.join(this.dir, 'supergraph.graphql');
    copyFileSync(path.join(ROOT, 'schema/supergraph.graphql'), supergraph);
    const throughBalancer = (names: readonly SubgraphName[]) =>
      Object.fromEntries(names.map((name) => [`${name.toUpperCase()}_SUBGRAPH_URL`, this.frontendUrl(name)]));
    const env: Record<TierName, NodeJS.ProcessEnv> = {
      router: {
        SUPERGRAPH_PATH: supergraph,
        ...throughBalancer(SUBGRAPHS),
        // Behind HAProxy, the client is the first X-Forwarded-For address.
        TRUST_PROXY: 'true',
        RATE_LIMIT_MAX: String(RATE_LIMIT.max),
        RATE_LIMIT_WINDOW_MS: String(RATE_LIMIT.windowMs),
        // A tier whose replica died is used again within a second (HAProxy has already sent traffic elsewhere).
        SUBGRAPH_BREAKER_COOLDOWN_MS: '1000',
        // A dead replica is answered for by HAProxy at once (refused, sent to the other); the deadline only meets a
        // slow one, and on a starved two-core machine a replica may take more than the default 10 s to answer.
        SUBGRAPH_TIMEOUT_MS: '20000',
        // Two routers on one machine: each its own metrics port.
        METRICS_PORT: '0',
      },
      // Orders looks users and products up when an order is placed.
      orders: throughBalancer(['users', 'products']),
      users: {},
      products: {},
      inventory: {},
      notify: {},
    };
    for (const tier of TIERS) {
      for (let n = 1; n <= REPLICAS; n++) {
        const name = `${tier}-${n}`;
        const port = ports.get(name);
        this.replicas.push({
          tier,
          name,
          port,
          process: new ServiceProcess({
            name,
            entry: ENTRIES[tier],
            cwd: ROOT,
            env: { ...shared, ...env[tier], ...(port === undefined ? {} : { PORT: String(port) }) },
            port,
            probe: '/ready',
            readyLine: 'notification worker started',
            // A router takes about a minute to start on a busy two-core machine.
            startTimeoutMs: 180_000,
            logPath: path.join(this.dir, 'logs', `${name}.log`),
            onDeath: (death) => this.deaths.push(death),
          }),
        });
      }
    }
  }

  /** First replicas, then second ones, then the routers: a few start-ups at a time on a small machine. */
  private async startAll(log: (line: string) => void): Promise<void> {
    const started = Date.now();
    for (let n = 1; n <= REPLICAS; n++) {
      const wave = this.replicas.filter((r) => r.tier !== 'router' && r.name.endsWith(`-${n}`));
      await Promise.all(wave.map((r) => r.process.start()));
      log(`  ${wave.map((r) => r.name).join(', ')} ready after ${((Date.now() - started) / 1000).toFixed(1)}s`);
    }
    await Promise.all(this.tier('router').map((r) => r.process.start()));
    await Promise.all(this.replicas.map((r) => this.waitInRotation(r)));
    log(`  routers ready and every replica in HAProxy's rotation after ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }

  /** Waits until HAProxy sends the replica traffic (its health checks passed); at once for a worker. */
  async waitInRotation(replica: Replica): Promise<void> {
    if (replica.port === undefined) return;
    await this.haproxy.waitUp(replica.tier, replica.name);
  }

  /** Retries and redispatches HAProxy made so far, over every tier. */
  async balancerRetries(): Promise<number> {
    let total = 0;
    for (const stats of (await this.haproxy.stats()).values()) total += stats.retries + stats.redispatches;
    return total;
  }

  /** Stops every process (SIGTERM; routers first), HAProxy, then the servers; the logs stay. */
  async stop(): Promise<void> {
    await Promise.all(this.tier('router').map((r) => r.process.stop()));
    await Promise.all(this.replicas.map((r) => r.process.stop()));
    await Promise.all(this.replicas.map((r) => r.process.close()));
    await this.haproxy.stop();
    await this.redis.stop();
    await this.postgres.stop();
  }
}
