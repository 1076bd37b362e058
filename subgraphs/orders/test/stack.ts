import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { Queue } from 'bullmq';
import { createLogger, createRedis, type Database } from '@shop/common';
import { ADMIN, identityHeaders, createTestRedis, graphql, startTestSubgraph, type TestRedis, type TestSubgraph } from '@shop/common/testing';
import { users } from '@shop/users';
import { products } from '@shop/products';
import { inventory, type InventoryRuntime } from '@shop/inventory';
import { orders, type OrdersRuntime } from '../src/server.js';

/**
 * The services the order saga spans, each real: users and products (seeded, asked over HTTP by placeOrder),
 * inventory (seeded stock, reservation worker) and orders, both with their runtimes on a Redis prefix of
 * this test file's own.
 */
export interface SagaStack {
  redis: TestRedis;
  users: TestSubgraph;
  products: TestSubgraph;
  inventory: (TestSubgraph & { runtime: InventoryRuntime | undefined }) | undefined;
  orders: TestSubgraph & { runtime: OrdersRuntime | undefined };
  /** The env the runtimes were started with. */
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function startSagaStack(
  label: string,
  options: { inventory?: boolean; ordersEnv?: NodeJS.ProcessEnv; env?: NodeJS.ProcessEnv } = {},
): Promise<SagaStack> {
  const redis = await createTestRedis(label);
  // Users and products may run background work of their own: it gets this file's prefix too, and `env`.
  const queueEnv = { ...options.env, REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix };
  const [u, p] = await Promise.all([
    startTestSubgraph(users, { seed: true, env: queueEnv }),
    startTestSubgraph(products, { seed: true, env: queueEnv }),
  ]);
  const env: NodeJS.ProcessEnv = {
    ...queueEnv,
    USERS_SUBGRAPH_URL: u.url,
    PRODUCTS_SUBGRAPH_URL: p.url,
  };
  const [inv, ord] = await Promise.all([
    options.inventory === false ? undefined : startTestSubgraph(inventory, { seed: true, env }),
    startTestSubgraph(orders, { env: { ...env, ...options.ordersEnv } }),
  ]);
  const closed = new Set<TestSubgraph>();
  return {
    redis,
    users: u,
    products: p,
    inventory: inv,
    orders: ord,
    env,
    async close() {
      for (const subgraph of [ord, inv, p, u]) {
        if (subgraph && !closed.has(subgraph)) {
          closed.add(subgraph);
          await subgraph.close();
        }
      }
      await redis.cleanup();
    },
  };
}

export const log = createLogger('test', 'silent');

export interface MoneyJson {
  amount: number;
  currency: string;
}
export interface PlacedOrderJson {
  id: string;
  status: string;
  statusReason: string | null;
  user: { id: string };
  items: { product: { id: string }; quantity: number; unitPrice: MoneyJson }[];
  total: MoneyJson;
  statusHistory: { status: string; at: string; reason: string | null }[];
}

export const ORDER_FIELDS = `id status statusReason user { id } items { product { id } quantity unitPrice { amount currency } }
  total { amount currency } statusHistory { status at reason }`;

export const PLACE_ORDER = `mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { ${ORDER_FIELDS} } }`;
export const CANCEL_ORDER = `mutation($id: ID!, $reason: String) { cancelOrder(id: $id, reason: $reason) { ${ORDER_FIELDS} } }`;
export const UPDATE_STATUS = `mutation($id: ID!, $status: OrderStatus!) { updateOrderStatus(id: $id, status: $status) { ${ORDER_FIELDS} } }`;

export async function placeOrder(url: string, userId: string, items: { productId: string; quantity: number }[]) {
  return graphql<{ placeOrder: PlacedOrderJson }>(url, PLACE_ORDER, { input: { userId, items } }, identityHeaders('orders', ADMIN));
}

export async function orderById(url: string, id: string): Promise<PlacedOrderJson | null> {
  const res = await graphql<{ order: PlacedOrderJson | null }>(url, `query($id: ID!) { order(id: $id) { ${ORDER_FIELDS} } }`, { id }, identityHeaders('orders', ADMIN));
  expect(res.errors).toBeUndefined();
  return res.data!.order;
}

/** Polls the orders database until the order is no longer PENDING; returns its status and how long it took. */
export async function settled(db: Database, id: string, timeoutMs = 10_000): Promise<{ status: string; ms: number }> {
  const started = Date.now();
  for (;;) {
    const [row] = await db.query<{ status: string }>('SELECT status FROM orders WHERE id = $1', [id]);
    if (row && row.status !== 'PENDING') return { status: row.status, ms: Date.now() - started };
    if (Date.now() - started > timeoutMs) throw new Error(`order ${id} is still ${row?.status ?? 'missing'} after ${timeoutMs} ms`);
    await sleep(10);
  }
}

export async function setStock(db: Database, productId: string, available: number): Promise<void> {
  await db.query(
    `INSERT INTO stock (product_id, available) VALUES ($1, $2)
     ON CONFLICT (product_id) DO UPDATE SET available = EXCLUDED.available`,
    [productId, available],
  );
}

export async function stockOf(db: Database, productId: string): Promise<number | undefined> {
  const [row] = await db.query<{ available: number }>('SELECT available FROM stock WHERE product_id = $1', [productId]);
  return row?.available;
}

/** Rows in the tables placeOrder writes to. */
export async function rowCounts(db: Database): Promise<Record<string, number>> {
  const [row] = await db.query<Record<string, number>>(
    `SELECT (SELECT count(*)::int FROM orders) AS orders, (SELECT count(*)::int FROM order_items) AS items,
            (SELECT count(*)::int FROM order_status_changes) AS changes, (SELECT count(*)::int FROM outbox) AS outbox`,
  );
  return row!;
}

/** A queue handle on the stack's Redis prefix, for looking at jobs or adding some as another service would. */
export function openQueue(stack: SagaStack, name: string): { queue: Queue; close(): Promise<void> } {
  const connection = createRedis(stack.redis.url, log);
  const queue = new Queue(name, { connection, prefix: stack.redis.prefix });
  return {
    queue,
    async close() {
      await queue.close();
      connection.disconnect();
    },
  };
}
