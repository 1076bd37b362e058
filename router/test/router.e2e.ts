import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop, type OutboxRelay } from '@shop/common';
import { graphql } from '@shop/common/testing';
import { captureLog, startStack, type Stack, type SubgraphName } from './stack.js';
import { ORDER_DETAILS } from './fixtures/operations.js';

const USER_ORDERS = /* GraphQL */ `
  query UserOrders($id: ID!) { user(id: $id) { name orders(first: 5) { edges { node { id total { amount } } } } } }
`;

interface OrderDetails {
  order: {
    id: string;
    status: string;
    createdAt: string;
    total: { amount: number; currency: string };
    user: { id: string; name: string; email: string };
    items: {
      quantity: number;
      unitPrice: { amount: number; currency: string };
      subtotal: { amount: number };
      product: {
        id: string;
        sku: string;
        name: string;
        price: { amount: number; currency: string };
        inStock: boolean;
        stock: number;
        shippingEstimate: { amount: number; currency: string } | null;
      };
    }[];
  } | null;
}

const shop = demoShop();
const usersLog = captureLog('users');
let stack: Stack;
/** These tests read as the administrator, who may read everything; the rules have auth.e2e.ts. */
let admin: Record<string, string>;

beforeAll(async () => {
  stack = await startStack({ logs: { users: usersLog.log } });
  admin = await stack.auth('admin');
  // These tests only read (or are refused before writing). The outbox relays poll their databases in the
  // background; stopped, every statement counted below is one the query itself caused.
  for (const subgraph of Object.values(stack.subgraphs)) {
    await (subgraph.runtime as { relay?: OutboxRelay } | undefined)?.relay?.stop();
  }
});
afterAll(() => stack?.stop());

describe('router: one request, four subgraphs', () => {
  it('answers OrderDetails with data from every subgraph', async () => {
    const demo = shop.orders[0]!;
    const res = await graphql<OrderDetails>(stack.url, ORDER_DETAILS, { id: demo.id }, admin);
    expect(res.errors).toBeUndefined();
    const order = res.data!.order!;
    const buyer = shop.users.find((u) => u.id === demo.userId)!;
    expect(order).toMatchObject({
      id: demo.id,
      status: demo.status,
      createdAt: demo.createdAt.toISOString(),
      user: { id: buyer.id, name: buyer.name, email: buyer.email },
      total: { amount: demo.lines.reduce((sum, l) => sum + l.quantity * l.unitPriceAmount, 0), currency: 'USD' },
    });
    expect(order.items).toHaveLength(10);
    order.items.forEach((item, i) => {
      const line = demo.lines[i]!;
      const product = shop.products.find((p) => p.id === line.productId)!;
      expect(item).toMatchObject({
        quantity: line.quantity,
        unitPrice: { amount: line.unitPriceAmount, currency: 'USD' },
        subtotal: { amount: line.quantity * line.unitPriceAmount },
        product: {
          id: product.id,
          sku: product.sku,
          name: product.name,
          price: { amount: product.priceAmount, currency: 'USD' },
          stock: product.stock,
          inStock: product.stock > 0,
        },
      });
      expect(item.product.shippingEstimate?.currency).toBe('USD');
      expect(Number.isInteger(item.product.shippingEstimate?.amount)).toBe(true);
    });
  });

  it('answers UserOrders: users and the orders that extend User', async () => {
    const buyer = shop.users[7]!;
    const res = await graphql<{ user: { name: string; orders: { edges: { node: { id: string; total: { amount: number } } }[] } } }>(
      stack.url,
      USER_ORDERS,
      { id: buyer.id },
      admin,
    );
    expect(res.errors).toBeUndefined();
    const expected = shop.orders
      .filter((o) => o.userId === buyer.id)
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
      .slice(0, 5)
      .map((o) => ({ node: { id: o.id, total: { amount: o.lines.reduce((s, l) => s + l.quantity * l.unitPriceAmount, 0) } } }));
    expect(res.data?.user).toEqual({ name: buyer.name, orders: { edges: expected } });
  });

  it('runs a small constant number of SQL statements per subgraph, for 2 orders as for 20', async () => {
    const query = `query($n: Int) { orders(first: $n) { edges { node {
      id user { name } items { quantity product { name price { amount } stock shippingEstimate { amount } } }
    } } } }`;
    const measure = async (n: number) => {
      const names = Object.keys(stack.subgraphs) as SubgraphName[];
      const before = Object.fromEntries(names.map((name) => [name, stack.subgraphs[name].db.statementCount]));
      const res = await graphql<{ orders: { edges: unknown[] } }>(stack.url, query, { n }, admin);
      expect(res.errors).toBeUndefined();
      expect(res.data?.orders.edges).toHaveLength(n);
      return Object.fromEntries(names.map((name) => [name, stack.subgraphs[name].db.statementCount - before[name]!]));
    };
    const two = await measure(2);
    const twenty = await measure(20);
    expect(twenty).toEqual(two);
    for (const count of Object.values(twenty)) expect(count).toBeLessThanOrEqual(2);
    expect(twenty.users).toBe(1);
    expect(twenty.inventory).toBe(1);
  });

  it('costs at most 4 SQL statements in all for OrderDetails', async () => {
    const dbs = Object.values(stack.subgraphs).map((s) => s.db);
    const before = dbs.reduce((sum, db) => sum + db.statementCount, 0);
    const res = await graphql(stack.url, ORDER_DETAILS, { id: shop.orders[0]!.id }, admin);
    expect(res.errors).toBeUndefined();
    expect(dbs.reduce((sum, db) => sum + db.statementCount, 0) - before).toBeLessThanOrEqual(4);
  });

  it('takes the client request id, echoes it, and sends it to the subgraphs', async () => {
    const requestId = `test-${Date.now()}`;
    const res = await graphql(stack.url, USER_ORDERS, { id: shop.users[1]!.id }, { ...admin, 'x-request-id': requestId });
    expect(res.errors).toBeUndefined();
    expect(res.headers.get('x-request-id')).toBe(requestId);
    expect(usersLog.lines.some((line) => line.requestId === requestId)).toBe(true);

    const generated = await graphql(stack.url, '{ __typename }', undefined, admin);
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('router: bad input reaches the frontend as BAD_USER_INPUT', () => {
  it.each([
    ['a malformed order id', '{ order(id: "nope") { id } }', 'id'],
    ['first above 100', '{ orders(first: 101) { edges { cursor } } }', 'first'],
    ['first below 0', '{ users(first: -1) { edges { cursor } } }', 'first'],
    ['a non-positive price', 'mutation { createProduct(input: { sku: "X-1", name: "X", description: "x", category: "toys", weightGrams: 10, price: { amount: 0, currency: "USD" } }) { id } }', 'input.price.amount'],
    ['a duplicate sku', `mutation { createProduct(input: { sku: "${shop.products[0]!.sku}", name: "X", description: "x", category: "toys", weightGrams: 10, price: { amount: 100, currency: "USD" } }) { id } }`, 'input.sku'],
    ['a duplicate email', `mutation { createUser(input: { email: "${shop.users[0]!.email.toUpperCase()}", name: "Copy" }) { id } }`, 'input.email'],
    ['a zero restock quantity', `mutation { restock(productId: "${shop.products[0]!.id}", quantity: 0) { id } }`, 'quantity'],
  ])('refuses %s', async (_what, query, field) => {
    const res = await graphql(stack.url, query, undefined, admin);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  it('answers null, not an error, for an unknown id', async () => {
    const res = await graphql(stack.url, '{ order(id: "00000000-0000-4000-8000-000000000000") { id } }', undefined, admin);
    expect(res).toMatchObject({ data: { order: null } });
    expect(res.errors).toBeUndefined();
  });
});

describe('router: HTTP', () => {
  it('lets Apollo Sandbox in through CORS', async () => {
    const res = await fetch(stack.url, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://studio.apollographql.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://studio.apollographql.com');
  });

  it('serves the Sandbox landing page to browsers', async () => {
    const res = await fetch(stack.url, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('sandbox');
  });

  it('refuses a GET that could be a cross-site request (CSRF prevention)', async () => {
    const res = await fetch(`${stack.url}?query=${encodeURIComponent('{ __typename }')}`);
    expect(res.status).toBe(400);
    const ok = await fetch(`${stack.url}?query=${encodeURIComponent('{ __typename }')}`, {
      headers: { 'apollo-require-preflight': 'true' },
    });
    expect(ok.status).toBe(200);
  });

  it('exposes Prometheus metrics that count operations and subgraph fetches', async () => {
    const scrape = async () => (await fetch(stack.metricsUrl)).text();
    const count = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
    const ok = /shop_router_graphql_operations_total\{operation="OrderDetails",type="query",outcome="ok"\} (\d+)/;
    const inventoryFetches = /shop_router_subgraph_fetch_duration_seconds_count\{subgraph="inventory",outcome="ok"\} (\d+)/;
    const before = await scrape();
    await graphql(stack.url, ORDER_DETAILS, { id: shop.orders[2]!.id }, admin);
    await graphql(stack.url, ORDER_DETAILS, { id: shop.orders[3]!.id }, admin);
    const after = await scrape();
    expect(count(after, ok) - count(before, ok)).toBe(2);
    // One inventory fetch per OrderDetails: stock, inStock and shippingEstimate all come after the products
    // fetch (they @require price and weight), so the plan is orders, then users and products, then inventory.
    expect(count(after, inventoryFetches) - count(before, inventoryFetches)).toBe(2);
    expect(after).toMatch(/shop_router_graphql_operation_duration_seconds_bucket\{le="0.5",operation="OrderDetails"\} \d+/);
    expect(after).toMatch(/shop_router_graphql_subscriptions_open 0/);
  });

  it('answers /health and /ready', async () => {
    const res = await fetch(new URL('/health', stack.url));
    expect(await res.json()).toEqual({ status: 'ok' });
    const ready = await fetch(new URL('/ready', stack.url));
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { schema: 'ok' } });
  });
});
