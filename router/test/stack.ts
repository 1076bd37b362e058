import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { DEMO_ADMIN, DEMO_CUSTOMER_PASSWORD, createLogger, demoShop, listen, type Listening, type Logger } from '@shop/common';
import { createTestRedis, graphql, startTestSubgraph, type TestRedis, type TestSubgraph } from '@shop/common/testing';
import { users } from '@shop/users';
import { products } from '@shop/products';
import { orders } from '@shop/orders';
import { inventory } from '@shop/inventory';
import { readRouterConfig } from '../src/config.js';
import { createRouter, type Router } from '../src/server.js';

export const COMMITTED_SUPERGRAPH = fileURLToPath(new URL('../../schema/supergraph.graphql', import.meta.url));

export type SubgraphName = 'users' | 'products' | 'orders' | 'inventory';
const DEFINITIONS = { users, products, orders, inventory } as const;

/** Log lines a test can read back. */
export function captureLog(name: string): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ name, level: 'debug' }, sink), lines };
}

export interface Stack {
  url: string;
  redis: TestRedis;
  /** What each subgraph runtime was started with: Redis, the queue prefix, look-up URLs. */
  env: NodeJS.ProcessEnv;
  subgraphs: Record<SubgraphName, TestSubgraph>;
  router: Router;
  http: Listening;
  /** The router's metrics port: Prometheus text at this URL (`…/metrics`), never on the client port. */
  metricsUrl: string;
  /** An access token from the real `login` mutation through the router: the admin, or a demo customer by id. */
  token(who: 'admin' | string): Promise<string>;
  /** `{ authorization: 'Bearer …' }` for `token(who)`. */
  auth(who: 'admin' | string): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

/** Logs in through the router and returns the access token; throws with the errors when login fails. */
export async function login(url: string, email: string, password: string): Promise<string> {
  const result = await graphql<{ login: { token: string } }>(
    url,
    'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }',
    { e: email, p: password },
  );
  if (!result.data?.login) throw new Error(`login of ${email} failed: ${JSON.stringify(result.errors)}`);
  return result.data.login.token;
}

/** Tokens by who, logged in once per stack (scrypt makes each login cost a fraction of a second). */
export function tokenCache(url: string): Pick<Stack, 'token' | 'auth'> {
  const tokens = new Map<string, Promise<string>>();
  const token = (who: string) => {
    let cached = tokens.get(who);
    if (!cached) {
      const email = who === 'admin' ? DEMO_ADMIN.email : demoShop().users.find((u) => u.id === who)?.email;
      if (!email) throw new Error(`${who} is not a demo user`);
      cached = login(url, email, who === 'admin' ? DEMO_ADMIN.password : DEMO_CUSTOMER_PASSWORD);
      tokens.set(who, cached);
    }
    return cached;
  };
  return { token, auth: async (who) => ({ authorization: `Bearer ${await token(who)}` }) };
}

/** A router on a supergraph file, with subgraph URLs overridden, listening on a free loopback port. */
export async function startRouter(
  supergraphPath: string,
  urls: Partial<Record<SubgraphName, string>>,
  log: Logger = createLogger('router', 'silent'),
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ router: Router; http: Listening; url: string; metricsUrl: string; stop(): Promise<void> }> {
  const env: NodeJS.ProcessEnv = { ...extraEnv, SUPERGRAPH_PATH: supergraphPath };
  for (const [name, url] of Object.entries(urls)) env[`${name.toUpperCase()}_SUBGRAPH_URL`] = url;
  const router = await createRouter(readRouterConfig([], env), log);
  const http = await listen(router.listener, 0, '127.0.0.1');
  router.attachWebSockets(http.server);
  // As main.ts does, on a port of its own.
  const metrics = await listen(router.metricsListener, 0, '127.0.0.1', '/metrics');
  return {
    router,
    http,
    url: http.url,
    metricsUrl: metrics.url,
    async stop() {
      await router.stop();
      await http.close();
      await metrics.close();
    },
  };
}

/**
 * The whole graph on loopback: the four subgraphs on ephemeral ports with fresh
 * seeded databases and their queues under a Redis prefix of the test's own, and
 * a router on the committed supergraph pointed at them.
 */
export async function startStack(
  options: { supergraphPath?: string; logs?: Partial<Record<SubgraphName | 'router', Logger>> } = {},
): Promise<Stack> {
  const redis = await createTestRedis('stack');
  // The users subgraph also runs the notification worker, so a test sees the whole flow.
  const env: NodeJS.ProcessEnv = { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix, NOTIFICATION_WORKER_IN_PROCESS: 'true' };
  const start = (name: SubgraphName) =>
    startTestSubgraph(DEFINITIONS[name] as never, { seed: true, log: options.logs?.[name], env });
  // Orders looks users and products up when an order is placed, so those come first.
  const [usersSubgraph, productsSubgraph, inventorySubgraph] = await Promise.all([start('users'), start('products'), start('inventory')]);
  env.USERS_SUBGRAPH_URL = usersSubgraph.url;
  env.PRODUCTS_SUBGRAPH_URL = productsSubgraph.url;
  const ordersSubgraph = await start('orders');
  const subgraphs: Record<SubgraphName, TestSubgraph> = {
    users: usersSubgraph,
    products: productsSubgraph,
    inventory: inventorySubgraph,
    orders: ordersSubgraph,
  };
  const entries = Object.entries(subgraphs);
  const urls = Object.fromEntries(entries.map(([name, s]) => [name, s.url]));
  const { router, http, metricsUrl, stop: stopRouter } = await startRouter(
    options.supergraphPath ?? COMMITTED_SUPERGRAPH,
    urls,
    options.logs?.router,
    // Tests send many requests from one address; the rate limit has a test of its own.
    { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix, RATE_LIMIT_MAX: '0' },
  );
  return {
    url: http.url,
    redis,
    env,
    subgraphs,
    router,
    http,
    metricsUrl,
    ...tokenCache(http.url),
    async stop() {
      await stopRouter();
      await Promise.all(entries.map(([, s]) => s.close()));
      await redis.cleanup();
    },
  };
}
