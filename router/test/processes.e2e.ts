import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CUSTOMER_PASSWORD, demoShop, migrate } from '@shop/common';
import { createTestDatabase, createTestRedis, graphql, type TestDatabase, type TestRedis } from '@shop/common/testing';
import { users } from '@shop/users';
import { products } from '@shop/products';
import { orders } from '@shop/orders';
import { inventory } from '@shop/inventory';
import { login } from './stack.js';

/**
 * The scale-out shape for real: two router processes and two orders
 * processes on one orders database, sharing Redis. Needs a PostgreSQL server
 * (embedded PGlite belongs to one process), so it runs when TEST_DATABASE_URL is set.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
const shop = demoShop();
const definitions = { users, products, orders, inventory } as const;
type Name = keyof typeof definitions;

const databases: Partial<Record<Name, TestDatabase>> = {};
const children: { name: string; child: ChildProcess; output: string[] }[] = [];
let redis: TestRedis;
let client: Client;
const urls: Record<string, string> = {};
/** The customer who places and follows an order, logged in through router A; router B checks the same token. */
const buyer = shop.users[11]!;
let authorization: string;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function spawnService(name: string, entry: string, env: NodeJS.ProcessEnv): Promise<string> {
  const port = await freePort();
  const output: string[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', SEED_DEMO_DATA: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  children.push({ name, child, output });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${output.join('')}`);
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
    if (ok) return `http://127.0.0.1:${port}/graphql`;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not start: ${output.join('')}`);
}

describe.skipIf(!process.env.TEST_DATABASE_URL)('scale-out: separate processes', () => {
  beforeAll(async () => {
    redis = await createTestRedis('processes');
    for (const name of Object.keys(definitions) as Name[]) {
      const database = await createTestDatabase(name);
      databases[name] = database;
      await migrate(database.db, definitions[name].migrations);
      await definitions[name].seed(database.db);
    }
    const shared = {
      REDIS_URL: redis.url,
      QUEUE_PREFIX: redis.prefix,
      USERS_DATABASE_URL: databases.users!.url,
      PRODUCTS_DATABASE_URL: databases.products!.url,
      ORDERS_DATABASE_URL: databases.orders!.url,
      INVENTORY_DATABASE_URL: databases.inventory!.url,
      NOTIFICATION_WORKER_IN_PROCESS: 'false',
    };
    [urls.users, urls.products, urls.inventory] = await Promise.all([
      spawnService('users', 'subgraphs/users/src/main.ts', shared),
      spawnService('products', 'subgraphs/products/src/main.ts', shared),
      spawnService('inventory', 'subgraphs/inventory/src/main.ts', shared),
    ]);
    const lookups = { ...shared, USERS_SUBGRAPH_URL: urls.users, PRODUCTS_SUBGRAPH_URL: urls.products };
    [urls.ordersA, urls.ordersB] = await Promise.all([
      spawnService('orders-a', 'subgraphs/orders/src/main.ts', lookups),
      spawnService('orders-b', 'subgraphs/orders/src/main.ts', lookups),
    ]);
    const routerEnv = (ordersUrl: string) => ({
      ...shared,
      USERS_SUBGRAPH_URL: urls.users,
      PRODUCTS_SUBGRAPH_URL: urls.products,
      INVENTORY_SUBGRAPH_URL: urls.inventory,
      ORDERS_SUBGRAPH_URL: ordersUrl,
      // Two routers: each its own free metrics port.
      METRICS_PORT: '0',
    });
    [urls.routerA, urls.routerB] = await Promise.all([
      spawnService('router-a', 'router/src/main.ts', routerEnv(urls.ordersA!)),
      spawnService('router-b', 'router/src/main.ts', routerEnv(urls.ordersB!)),
    ]);
    authorization = `Bearer ${await login(urls.routerA!, buyer.email, DEMO_CUSTOMER_PASSWORD)}`;
    client = createClient({
      url: urls.routerB!.replace('http', 'ws'),
      webSocketImpl: WebSocket,
      lazy: true,
      retryAttempts: 0,
      connectionParams: { authorization },
    });
  }, 180_000);

  afterAll(async () => {
    await client?.dispose();
    await Promise.all(
      children.map(({ child }) =>
        child.exitCode !== null ? undefined : new Promise((resolve) => {
          child.once('exit', resolve);
          child.kill('SIGTERM');
        }),
      ),
    );
    for (const database of Object.values(databases)) await database.drop();
    await redis?.cleanup();
  }, 60_000);

  it('a client on router B sees an order placed through router A, through Redis', async () => {
    const product = shop.products.find((p) => p.stock > 50)!;
    const statuses: string[] = [];
    const names: string[] = [];
    const stop = client.subscribe<{ orderUpdates: { status: string; user: { name: string } } }>(
      { query: 'subscription($u: ID!) { orderUpdates(userId: $u) { status user { name } } }', variables: { u: buyer.id } },
      {
        next: (event) => {
          if (event.data) {
            statuses.push(event.data.orderUpdates.status);
            names.push(event.data.orderUpdates.user.name);
          }
        },
        error: () => undefined,
        complete: () => undefined,
      },
    );
    // Another process's Redis listener cannot be observed from here: give the subscription time to reach
    // orders B (it takes about 100 ms) before placing the order.
    await new Promise((r) => setTimeout(r, 2_000));
    const placed = await graphql<{ placeOrder: { id: string } }>(
      urls.routerA!,
      'mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }',
      { input: { items: [{ productId: product.id, quantity: 1 }] } },
      { authorization },
    );
    expect(placed.errors).toBeUndefined();
    await expect.poll(() => statuses, { timeout: 10_000 }).toEqual(['PENDING', 'CONFIRMED']);
    expect(names).toEqual([buyer.name, buyer.name]);
    stop();
  });

  it('stops every process cleanly on SIGTERM', async () => {
    const exits = await Promise.all(
      children.map(
        ({ name, child }) =>
          new Promise<[string, number | null]>((resolve) => {
            child.once('exit', (code) => resolve([name, code]));
            child.kill('SIGTERM');
          }),
      ),
    );
    expect(exits).toEqual(children.map(({ name }) => [name, 0]));
  });
});
