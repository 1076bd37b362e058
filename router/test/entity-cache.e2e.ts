import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import { entityGenerations, graphql } from '@shop/common/testing';
import { ORDER_DETAILS } from './fixtures/operations.js';
import { startStack, type Stack } from './stack.js';

const shop = demoShop();
const NO_CACHE = { 'cache-control': 'no-cache' };
const PLACE = 'mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }';
const STATUS = 'query($id: ID!) { order(id: $id) { status } }';

interface Details {
  order: {
    id: string;
    status: string;
    user: { id: string; name: string; email: string };
    items: { quantity: number; product: { id: string; name: string; price: { amount: number; currency: string }; stock: number; inStock: boolean } }[];
  };
}

let stack: Stack;
let admin: Record<string, string>;

/** Fetches the router made so far, by subgraph (its Prometheus counter). */
async function fetchCounts(): Promise<Record<string, number>> {
  const text = await (await fetch(stack.metricsUrl)).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^shop_router_subgraph_fetch_duration_seconds_count\{subgraph="(\w+)",outcome="\w+"\} (\d+)$/gm)) {
    counts[m[1]!] = (counts[m[1]!] ?? 0) + Number(m[2]);
  }
  return counts;
}

async function fetchesOf(run: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await fetchCounts();
  await run();
  const after = await fetchCounts();
  return Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]).filter(([, n]) => n !== 0));
}

async function details(id: string, headers: Record<string, string>): Promise<Details> {
  const result = await graphql<Details>(stack.url, ORDER_DETAILS, { id }, headers);
  expect(result.errors).toBeUndefined();
  return result.data!;
}

/** The same order read through the cache and without it must be equal, whatever changed in between. */
async function expectFresh(id: string, headers: Record<string, string> = admin): Promise<Details> {
  const cached = await details(id, headers);
  expect(cached).toEqual(await details(id, { ...headers, ...NO_CACHE }));
  return cached;
}

describe('entity cache through the router', () => {
  beforeAll(async () => {
    stack = await startStack();
    admin = await stack.auth('admin');
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers a repeated OrderDetails with the orders fetch only, and every subgraph says it keeps the contract', async () => {
    const order = shop.orders.find((o) => o.lines.length >= 3)!;
    // The first answers carry the header, the next starts the cache epoch in this fresh Redis, the next fills it.
    for (let i = 0; i < 3; i++) await details(order.id, admin);
    expect(await fetchesOf(() => details(order.id, admin))).toEqual({ orders: 1 });
    expect(await fetchesOf(() => details(order.id, { ...admin, ...NO_CACHE }))).toEqual({ orders: 1, users: 1, products: 1, inventory: 1 });
    const metrics = await (await fetch(stack.metricsUrl)).text();
    expect(metrics).toMatch(/shop_router_entity_cache_entities_total\{subgraph="products",result="hit"\} [1-9]/);
  });

  it('keeps what a change does not touch: a status change leaves the products and their stock cached', async () => {
    const order = shop.orders.find((o) => o.status === 'CONFIRMED' && o.lines.length >= 2)!;
    for (let i = 0; i < 2; i++) await details(order.id, admin);
    const notified = async () => (await entityGenerations(stack.redis))[`users:User:${order.userId}`] ?? 0;
    const before = await notified();
    const shipped = await graphql(stack.url, 'mutation($id: ID!) { updateOrderStatus(id: $id, status: SHIPPED) { id } }', { id: order.id }, admin);
    expect(shipped.errors).toBeUndefined();
    // The change tells the buyer (a notification, recorded in users, so User.notifications changed too).
    await expect.poll(notified, { timeout: 5_000 }).toBe(before + 1);
    let read: Details | undefined;
    expect(await fetchesOf(async () => (read = await details(order.id, admin)))).toEqual({ orders: 1, users: 1 });
    expect(read!.order.status).toBe('SHIPPED');
    expect(await fetchesOf(() => details(order.id, admin))).toEqual({ orders: 1 });
  });

  it('shows a price change and a restock at once, on the next read after the mutation answered', async () => {
    const order = shop.orders.find((o) => o.lines.length >= 2)!;
    await details(order.id, admin);
    const before = await details(order.id, admin);
    const product = before.order.items[1]!.product;
    const update = await graphql(
      stack.url,
      'mutation($id: ID!, $amount: Int!, $currency: String!) { updateProduct(id: $id, input: { price: { amount: $amount, currency: $currency } }) { id } }',
      { id: product.id, amount: product.price.amount + 7, currency: product.price.currency },
      admin,
    );
    expect(update.errors).toBeUndefined();
    let after = await expectFresh(order.id);
    expect(after.order.items[1]!.product.price.amount).toBe(product.price.amount + 7);

    const restock = await graphql(stack.url, 'mutation($id: ID!) { restock(productId: $id, quantity: 5) { id } }', { id: product.id }, admin);
    expect(restock.errors).toBeUndefined();
    after = await expectFresh(order.id);
    expect(after.order.items[1]!.product.stock).toBe(product.stock + 5);
    // Only the changed product was asked again; the other lines' products came from memory.
    const changedOnly = await fetchesOf(() => expectFresh(order.id));
    expect(changedOnly.orders).toBe(2);
  });

  it('follows the saga: stock reserved by a placed order and released by its cancellation', async () => {
    // A customer's order whose first line's product we buy more of; that order's page is in the cache.
    const watched = shop.orders.find((o) => o.lines.length > 0 && o.userId === shop.users[5]!.id)!;
    const headers = await stack.auth(watched.userId);
    const productId = watched.lines[0]!.productId;
    const stockOf = (d: Details) => d.order.items.find((i) => i.product.id === productId)!.product.stock;
    await details(watched.id, headers);
    const before = stockOf(await details(watched.id, headers));

    const placed = await graphql<{ placeOrder: { id: string } }>(stack.url, PLACE, { input: { items: [{ productId, quantity: 2 }] } }, headers);
    expect(placed.errors).toBeUndefined();
    const id = placed.data!.placeOrder.id;
    const status = async () => (await graphql<{ order: { status: string } }>(stack.url, STATUS, { id }, headers)).data?.order.status;
    await expect.poll(status, { timeout: 5_000 }).toBe('CONFIRMED');
    // The reservation committed (and bumped the product) before the saga confirmed the order.
    expect(stockOf(await expectFresh(watched.id, headers))).toBe(before - 2);
    expect((await expectFresh(id, headers)).order.status).toBe('CONFIRMED');

    const cancel = await graphql(stack.url, 'mutation($id: ID!) { cancelOrder(id: $id) { id status } }', { id }, headers);
    expect(cancel.errors).toBeUndefined();
    expect((await details(id, headers)).order.status).toBe('CANCELLED');
    // The release runs in inventory's worker after the cancellation (so a cached and a fresh read made while it runs
    // may differ): once it has, the cached pages show it.
    await expect.poll(async () => stockOf(await details(watched.id, headers)), { timeout: 5_000 }).toBe(before);
    await expectFresh(watched.id, headers);
    expect((await expectFresh(id, headers)).order.status).toBe('CANCELLED');
  });

  it('keeps callers apart: a customer is refused what the administrator read into the cache', async () => {
    const order = shop.orders[0]!;
    const other = shop.users.find((u) => u.id !== order.userId)!;
    await details(order.id, admin);
    await details(order.id, admin);
    const refused = await graphql(stack.url, ORDER_DETAILS, { id: order.id }, await stack.auth(other.id));
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(refused.data?.order ?? null).toBeNull();
  });
});
