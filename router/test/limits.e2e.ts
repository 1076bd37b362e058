import { getIntrospectionQuery } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop, type OutboxRelay } from '@shop/common';
import { graphql } from '@shop/common/testing';
import type { OrdersRuntime } from '@shop/orders';
import { startStack, type Stack } from './stack.js';
import { ORDER_DETAILS } from './fixtures/operations.js';

const shop = demoShop();
/** 13 levels: one over the default depth limit of 12. */
const DEEP_SELECTION = 'user { orders { edges { node { user { orders { edges { node { user { orders { edges { node { id } } } } } } } } } } } }';
const EXPENSIVE = /* GraphQL */ `
  query Expensive($n: Int) {
    orders(first: $n) { edges { node {
      items { product { name price { amount } stock } }
      user { orders(first: 100) { edges { node { id status } } } }
    } } }
  }
`;

let stack: Stack;
/** Operations run as the administrator, who may read everything; the rules have auth.e2e.ts. */
let admin: Record<string, string>;
const clients: Client[] = [];

/** SQL statements run so far by every subgraph: unchanged means no subgraph did any work. */
function statements(): number {
  return Object.values(stack.subgraphs).reduce((sum, s) => sum + s.db.statementCount, 0);
}

/** Posts an operation the router must refuse, and checks that no subgraph was asked for anything. */
async function refused(query: string, variables?: Record<string, unknown>) {
  const before = statements();
  const res = await graphql(stack.url, query, variables, admin);
  expect(res.data).toBeUndefined();
  expect(res.errors).toHaveLength(1);
  expect(statements()).toBe(before);
  return { status: res.status, error: res.errors![0]! };
}

/** Subscribes over a real graphql-ws socket and resolves with the first thing the router answers. */
function overWebSocket(query: string, variables: Record<string, unknown> = {}) {
  const client = createClient({
    url: stack.url.replace('http', 'ws'),
    webSocketImpl: WebSocket,
    lazy: true,
    retryAttempts: 0,
    connectionParams: { authorization: admin.authorization },
  });
  clients.push(client);
  return new Promise<{ errors?: readonly { message: string; extensions?: Record<string, unknown> }[]; data?: unknown }>((resolve) => {
    const stop = client.subscribe(
      { query, variables },
      {
        next: (result) => {
          stop();
          resolve(result as { data?: unknown });
        },
        error: (error) => resolve({ errors: error as { message: string; extensions?: Record<string, unknown> }[] }),
        complete: () => undefined,
      },
    );
  });
}

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.auth('admin');
  // Stopped relays stop polling, so every SQL statement counted is one an operation caused.
  for (const subgraph of Object.values(stack.subgraphs)) {
    await (subgraph.runtime as { relay?: OutboxRelay } | undefined)?.relay?.stop();
  }
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await stack?.stop();
});

describe('operation limits over HTTP', () => {
  it('let OrderDetails, a page of orders and the introspection query through', async () => {
    const details = await graphql<{ order: { items: unknown[] } }>(stack.url, ORDER_DETAILS, { id: shop.orders[0]!.id }, admin);
    expect(details.errors).toBeUndefined();
    expect(details.data?.order.items).toHaveLength(10);

    const page = await graphql<{ orders: { edges: unknown[] } }>(stack.url, EXPENSIVE, { n: 1 }, admin);
    expect(page.errors).toBeUndefined();
    expect(page.data?.orders.edges).toHaveLength(1);

    const introspection = await graphql<{ __schema: { types: { name: string }[] } }>(stack.url, getIntrospectionQuery(), undefined, admin);
    expect(introspection.errors).toBeUndefined();
    expect(introspection.data?.__schema.types.map((t) => t.name)).toContain('Order');
  });

  it('refuses a query nested deeper than 12 levels with QUERY_TOO_DEEP', async () => {
    const { status, error } = await refused(`query Deep { ${DEEP_SELECTION.replace('user {', `user(id: "${shop.users[0]!.id}") {`)} }`);
    expect(status).toBe(400);
    expect(error.extensions).toMatchObject({ code: 'QUERY_TOO_DEEP', limit: 12, actual: 13 });
    expect(error.message).toMatch(/^Operation Deep nests fields 13 levels deep; the limit is 12\./);
  });

  it('refuses an expensive query with QUERY_TOO_COMPLEX, taking `first` from the variables', async () => {
    const { status, error } = await refused(EXPENSIVE, { n: 100 });
    expect(status).toBe(400);
    // orders 1 + 100 × (edges 1 + node 1 + items (1 + 10 × 5) + user 1 + orders (1 + 100 × 4))
    expect(error.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', limit: 5000, actual: 45501 });
    expect(error.message).toMatch(/^Operation Expensive has an estimated cost of 45501; the limit is 5000\./);
  });

  it('refuses more than 30 aliases with TOO_MANY_ALIASES, counting through fragments', async () => {
    const aliases = Array.from({ length: 16 }, (_, i) => `a${i}: id`).join(' ');
    const id = shop.orders[0]!.id;
    const query = `query Aliased { o1: order(id: "${id}") { ...F } o2: order(id: "${id}") { ...F } } fragment F on Order { ${aliases} }`;
    const { status, error } = await refused(query);
    expect(status).toBe(400);
    expect(error.extensions).toMatchObject({ code: 'TOO_MANY_ALIASES', limit: 30, actual: 2 + 2 * 16 });
    expect(error.message).toMatch(/^Operation Aliased uses 34 aliases; the limit is 30\./);
  });

  it('refuses more than 10 root fields with TOO_MANY_ROOT_FIELDS', async () => {
    const fields = shop.orders.slice(0, 11).map((o, i) => `o${i}: order(id: "${o.id}") { id }`).join(' ');
    const { status, error } = await refused(`{ ${fields} }`);
    expect(status).toBe(400);
    expect(error.extensions).toMatchObject({ code: 'TOO_MANY_ROOT_FIELDS', limit: 10, actual: 11 });
    expect(error.message).toMatch(/^This query selects 11 top-level fields; the limit is 10\. Split it/);
  });

  it('refuses a document of more than 5000 tokens with TOO_MANY_TOKENS', async () => {
    const query = `{ ${Array.from({ length: 5000 }, () => '__typename').join(' ')} }`;
    const { status, error } = await refused(query);
    expect(status).toBe(400);
    expect(error.extensions).toMatchObject({ code: 'TOO_MANY_TOKENS', limit: 5000, actual: 5002 });
    expect(error.message).toMatch(/^The document has 5002 tokens; the limit is 5000\./);
  });

  it('refuses a body over the body limit with 413 PAYLOAD_TOO_LARGE', async () => {
    const before = statements();
    const response = await fetch(stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: ORDER_DETAILS, variables: { id: 'x'.repeat(1_100_000) } }),
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({
      errors: [{ message: 'Request body is larger than 1000000 bytes', extensions: { code: 'PAYLOAD_TOO_LARGE' } }],
    });
    expect(statements()).toBe(before);
  });
});

describe('operation limits over graphql-ws', () => {
  const buyer = shop.users[3]!;

  it('refuses a too deep subscription with QUERY_TOO_DEEP before subscribing upstream', async () => {
    const before = statements();
    const result = await overWebSocket(`subscription Deep($u: ID!) { orderUpdates(userId: $u) { ${DEEP_SELECTION} } }`, { u: buyer.id });
    expect(result.errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_DEEP']);
    expect(result.errors?.[0]?.message).toMatch(/nests fields 14 levels deep; the limit is 12/);
    expect((stack.subgraphs.orders.runtime as OrdersRuntime).events.listenerCount).toBe(0);
    expect(stack.router.subscriptions.openCount).toBe(0);
    expect(statements()).toBe(before);
  });

  it('refuses an expensive subscription with QUERY_TOO_COMPLEX, with `first` from its variables', async () => {
    const query = `subscription Costly($u: ID!, $n: Int) { orderUpdates(userId: $u) {
      user { orders(first: $n) { edges { node { items { product { name } } user { orders(first: $n) { edges { node { id } } } } } } } }
    } }`;
    const result = await overWebSocket(query, { u: buyer.id, n: 100 });
    expect(result.errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(result.errors?.[0]?.extensions).toMatchObject({ limit: 5000 });
    expect(stack.router.subscriptions.openCount).toBe(0);
  });

  it('applies the same limits to queries and to tokens over the socket', async () => {
    const before = statements();
    const fields = shop.orders.slice(0, 11).map((o, i) => `o${i}: order(id: "${o.id}") { id }`).join(' ');
    const roots = await overWebSocket(`{ ${fields} }`);
    expect(roots.errors?.map((e) => e.extensions?.code)).toEqual(['TOO_MANY_ROOT_FIELDS']);
    const tokens = await overWebSocket(`{ ${Array.from({ length: 5000 }, () => '__typename').join(' ')} }`);
    expect(tokens.errors?.map((e) => e.extensions?.code)).toEqual(['TOO_MANY_TOKENS']);
    expect(tokens.errors?.[0]?.message).toMatch(/^The document has 5002 tokens; the limit is 5000\./);
    expect(statements()).toBe(before);

    const allowed = await overWebSocket(ORDER_DETAILS, { id: shop.orders[0]!.id });
    expect(allowed.errors).toBeUndefined();
    expect(allowed.data).toMatchObject({ order: { id: shop.orders[0]!.id } });
  });
});
