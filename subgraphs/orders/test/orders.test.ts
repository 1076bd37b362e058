import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop, type DemoOrder } from '@shop/common';
import {
  ADMIN,
  identityHeaders,
  countStatements,
  createTestRedis,
  graphql,
  startTestSubgraph,
  type GraphQLResponse,
  type TestRedis,
  type TestSubgraph,
} from '@shop/common/testing';
import { orders } from '../src/server.js';

interface MoneyJson {
  amount: number;
  currency: string;
}
interface OrderJson {
  id: string;
  status: string;
  user: { id: string };
  items: { product: { id: string }; quantity: number; unitPrice: MoneyJson; subtotal: MoneyJson }[];
  total: MoneyJson;
  createdAt: string;
  updatedAt: string;
}
interface ConnectionJson<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

let subgraph: TestSubgraph & { runtime: { stop(): Promise<void> } | undefined };
let redis: TestRedis;
const shop = demoShop();

const ORDER_FIELDS = `id status user { id } createdAt updatedAt total { amount currency }
  items { product { id } quantity unitPrice { amount currency } subtotal { amount currency } }`;

/** The order as the schema should present it, computed from the demo data alone. */
function expected(order: DemoOrder): OrderJson {
  const money = (amount: number) => ({ amount, currency: order.currency });
  return {
    id: order.id,
    status: order.status,
    user: { id: order.userId },
    items: order.lines.map((line) => ({
      product: { id: line.productId },
      quantity: line.quantity,
      unitPrice: money(line.unitPriceAmount),
      subtotal: money(line.unitPriceAmount * line.quantity),
    })),
    total: money(order.lines.reduce((sum, line) => sum + line.unitPriceAmount * line.quantity, 0)),
    createdAt: order.createdAt.toISOString(),
    updatedAt: order.createdAt.toISOString(),
  };
}

/** Newest first, ties broken by id descending, as the API promises. */
function newestFirst(list: readonly DemoOrder[]): DemoOrder[] {
  return [...list].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1));
}

const ids = (connection: ConnectionJson<{ id: string }>) => connection.edges.map((e) => e.node.id);

beforeAll(async () => {
  // The subgraph starts its queue workers; they get a Redis prefix of their own.
  redis = await createTestRedis('orders');
  subgraph = await startTestSubgraph(orders, { seed: true, env: { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix } });
  // These tests count SQL statements; the outbox relay's polling would add to them, and they need no queues.
  await subgraph.runtime?.stop();
});
afterAll(async () => {
  await subgraph?.close();
  await redis?.cleanup();
});

describe('orders subgraph', () => {
  it('seeds the demo orders and lines once, however often it runs', async () => {
    expect(await orders.seed(subgraph.db)).toEqual({ inserted: 0 });
    const [row] = await subgraph.db.query<{ orders: number; lines: number }>(
      'SELECT (SELECT count(*)::int FROM orders) AS orders, (SELECT count(*)::int FROM order_items) AS lines',
    );
    expect(row).toEqual({
      orders: shop.orders.length,
      lines: shop.orders.reduce((sum, o) => sum + o.lines.length, 0),
    });
  });

  it('reads an order with its items, subtotals and total in one statement, and null for an unknown id', async () => {
    const order = shop.orders[0]!;
    expect(order.lines).toHaveLength(10);
    let res: GraphQLResponse<{ a: OrderJson; b: OrderJson | null }> | undefined;
    const statements = await countStatements(subgraph.db, async () => {
      res = await graphql(subgraph.url, `query($a: ID!, $b: ID!) { a: order(id: $a) { ${ORDER_FIELDS} } b: order(id: $b) { id } }`, {
        a: order.id.toUpperCase(),
        b: '00000000-0000-4000-8000-000000000000',
      }, identityHeaders('orders', ADMIN));
    });
    expect(res?.errors).toBeUndefined();
    expect(res?.data).toEqual({ a: expected(order), b: null });
    expect(statements).toBe(1);
  });

  it.each([
    ['{ order(id: "42") { id } }', 'id'],
    ['{ orders(first: -1) { edges { cursor } } }', 'first'],
    ['{ orders(first: 101) { edges { cursor } } }', 'first'],
    ['{ orders(after: "not-a-cursor") { edges { cursor } } }', 'after'],
    [`{ orders(after: "${Buffer.from(JSON.stringify(['yesterday', 'x'])).toString('base64url')}") { edges { cursor } } }`, 'after'],
    ['{ orders(userId: "nobody") { edges { cursor } } }', 'userId'],
  ])('refuses %s with BAD_USER_INPUT naming the field', async (query, field) => {
    const res = await graphql(subgraph.url, query, undefined, identityHeaders('orders', ADMIN));
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(res.errors?.[0]?.message).toMatch(new RegExp(`^${field}: `));
  });

  it('lists a page of orders with their items in one statement, newest first', async () => {
    let res: GraphQLResponse<{ orders: ConnectionJson<OrderJson> }> | undefined;
    const statements = await countStatements(subgraph.db, async () => {
      res = await graphql(subgraph.url, `{ orders(first: 20) { edges { cursor node { ${ORDER_FIELDS} } } pageInfo { hasNextPage endCursor } } }`, undefined, identityHeaders('orders', ADMIN));
    });
    expect(res?.errors).toBeUndefined();
    const page = res!.data!.orders;
    expect(page.edges.map((e) => e.node)).toEqual(newestFirst(shop.orders).slice(0, 20).map(expected));
    expect(page.pageInfo).toEqual({ hasNextPage: true, endCursor: page.edges[19]!.cursor });
    expect(statements).toBe(1);
  });

  it('pages through all orders without duplicates or gaps', async () => {
    const query = 'query($after: String) { orders(first: 100, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }';
    const seen: string[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 50; pages++) {
      const res: GraphQLResponse<{ orders: ConnectionJson<{ id: string }> }> = await graphql(subgraph.url, query, { after }, identityHeaders('orders', ADMIN));
      expect(res.errors).toBeUndefined();
      const page = res.data!.orders;
      seen.push(...ids(page));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual(newestFirst(shop.orders).map((o) => o.id));
  });

  it('filters by status and by user, and pages within the filter', async () => {
    const query = `query($status: OrderStatus, $userId: ID, $after: String) {
      orders(first: 7, status: $status, userId: $userId, after: $after) { edges { node { id status user { id } } } pageInfo { hasNextPage endCursor } }
    }`;
    const user = shop.orders[0]!.userId;
    for (const variables of [{ status: 'CANCELLED' }, { userId: user }, { userId: user, status: 'DELIVERED' }]) {
      const want = newestFirst(
        shop.orders.filter((o) => (!variables.status || o.status === variables.status) && (!variables.userId || o.userId === variables.userId)),
      );
      expect(want.length).toBeGreaterThan(7);
      const seen: string[] = [];
      let after: string | null = null;
      for (let pages = 0; pages < 500; pages++) {
        const res: GraphQLResponse<{ orders: ConnectionJson<{ id: string; status: string; user: { id: string } }> }> = await graphql(
          subgraph.url,
          query,
          { ...variables, after },
          identityHeaders('orders', ADMIN),
        );
        expect(res.errors).toBeUndefined();
        const page = res.data!.orders;
        for (const { node } of page.edges) {
          if (variables.status) expect(node.status).toBe(variables.status);
          if (variables.userId) expect(node.user.id).toBe(variables.userId);
        }
        seen.push(...ids(page));
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
      }
      expect(seen).toEqual(want.map((o) => o.id));
    }
  });

  it('answers first: 0 with an empty page that says more follow', async () => {
    const res = await graphql<{ orders: ConnectionJson<{ id: string }> }>(subgraph.url, '{ orders(first: 0) { edges { node { id } } pageInfo { hasNextPage endCursor } } }', undefined, identityHeaders('orders', ADMIN));
    expect(res.data?.orders).toEqual({ edges: [], pageInfo: { hasNextPage: true, endCursor: null } });
  });

  it('resolves 20 Order references with their items in one statement', async () => {
    const wanted = shop.orders.slice(100, 120);
    const reps = [...wanted.map((o) => ({ __typename: 'Order', id: o.id })), { __typename: 'Order', id: 'malformed' }];
    let res: GraphQLResponse<{ _entities: (OrderJson | null)[] }> | undefined;
    const statements = await countStatements(subgraph.db, async () => {
      res = await graphql(subgraph.url, `query($r: [_Any!]!) { _entities(representations: $r) { ... on Order { ${ORDER_FIELDS} } } }`, { r: reps }, identityHeaders('orders', ADMIN));
    });
    expect(res?.errors).toBeUndefined();
    expect(res?.data?._entities).toEqual([...wanted.map(expected), null]);
    expect(statements).toBe(1);
  });

  it('gives demo orders a status history that leads to their status, read for many orders in one statement', async () => {
    let res: GraphQLResponse<{ orders: ConnectionJson<{ id: string; status: string; statusReason: string | null; statusHistory: { status: string; at: string; reason: string | null }[] }> }> | undefined;
    const statements = await countStatements(subgraph.db, async () => {
      res = await graphql(subgraph.url, '{ orders(first: 100) { edges { node { id status statusReason statusHistory { status at reason } } } } }', undefined, identityHeaders('orders', ADMIN));
    });
    expect(res?.errors).toBeUndefined();
    expect(statements).toBe(2);
    const byId = new Map(res!.data!.orders.edges.map((e) => [e.node.id, e.node]));
    const paths: Record<string, string[]> = {
      PENDING: ['PENDING'],
      CONFIRMED: ['PENDING', 'CONFIRMED'],
      SHIPPED: ['PENDING', 'CONFIRMED', 'SHIPPED'],
      DELIVERED: ['PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED'],
      CANCELLED: ['PENDING', 'CANCELLED'],
      REJECTED: ['PENDING', 'REJECTED'],
    };
    for (const order of newestFirst(shop.orders).slice(0, 100)) {
      const node = byId.get(order.id)!;
      expect(node.statusHistory.map((h) => h.status)).toEqual(paths[order.status]);
      expect(new Set(node.statusHistory.map((h) => h.at))).toEqual(new Set([order.createdAt.toISOString()]));
      expect(node.statusReason === null).toBe(!['REJECTED', 'CANCELLED'].includes(order.status));
      expect(node.statusHistory.at(-1)?.reason).toBe(node.statusReason);
    }
  });

  it('stores the product names of demo order lines', async () => {
    const names = new Map(shop.products.map((p) => [p.id, p.name]));
    const rows = await subgraph.db.query<{ productId: string; name: string | null }>(
      'SELECT product_id AS "productId", product_name AS name FROM order_items WHERE order_id = $1 ORDER BY line',
      [shop.orders[0]!.id],
    );
    expect(rows.map((r) => r.name)).toEqual(shop.orders[0]!.lines.map((l) => names.get(l.productId)));
  });

  describe('User.orders', () => {
    const query = `query($r: [_Any!]!, $first: Int, $after: String, $status: OrderStatus) { _entities(representations: $r) {
      ... on User { id orders(first: $first, after: $after, status: $status) {
        edges { node { id total { amount } items { quantity } } } pageInfo { hasNextPage endCursor } } }
    } }`;
    type UserJson = { id: string; orders: ConnectionJson<{ id: string; total: { amount: number }; items: { quantity: number }[] }> };

    async function usersOrders(userIds: readonly string[], variables: Record<string, unknown>) {
      let res: GraphQLResponse<{ _entities: UserJson[] }> | undefined;
      const statements = await countStatements(subgraph.db, async () => {
        res = await graphql(subgraph.url, query, { r: userIds.map((id) => ({ __typename: 'User', id })), ...variables }, identityHeaders('orders', ADMIN));
      });
      expect(res?.errors).toBeUndefined();
      return { users: res!.data!._entities, statements };
    }

    const ordersOf = (userId: string) => newestFirst(shop.orders.filter((o) => o.userId === userId));

    it('reads the first orders of 20 users in one statement, and of 2 users in as many', async () => {
      const userIds = shop.users.slice(0, 20).map((u) => u.id);
      const many = await usersOrders(userIds, { first: 5 });
      expect(many.users.map((u) => u.id)).toEqual(userIds);
      for (const user of many.users) {
        const want = ordersOf(user.id);
        expect(user.orders.edges.map((e) => e.node)).toEqual(
          want.slice(0, 5).map((o) => ({
            id: o.id,
            total: { amount: expected(o).total.amount },
            items: o.lines.map((l) => ({ quantity: l.quantity })),
          })),
        );
        expect(user.orders.pageInfo.hasNextPage).toBe(want.length > 5);
      }
      const few = await usersOrders(userIds.slice(0, 2), { first: 5 });
      expect(many.statements).toBe(1);
      expect(few.statements).toBe(many.statements);
    });

    it('pages a user\'s orders in one status with a cursor', async () => {
      const userId = shop.orders[0]!.userId;
      const want = ordersOf(userId).filter((o) => o.status === 'DELIVERED');
      expect(want.length).toBeGreaterThan(2);
      const seen: string[] = [];
      let after: string | null = null;
      for (let pages = 0; pages < 100; pages++) {
        const { users }: { users: UserJson[] } = await usersOrders([userId], { first: 2, after, status: 'DELIVERED' });
        const page = users[0]!.orders;
        seen.push(...ids(page));
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
      }
      expect(seen).toEqual(want.map((o) => o.id));
    });

    it('gives a user without orders an empty page', async () => {
      const { users } = await usersOrders(['00000000-0000-4000-8000-000000000000'], { first: 5 });
      expect(users[0]?.orders).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
    });

    it.each([
      [{ first: 101 }, 'first'],
      [{ after: 'not-a-cursor' }, 'after'],
    ])('refuses %j with BAD_USER_INPUT', async (variables, field) => {
      const res = await graphql(subgraph.url, query, { r: [{ __typename: 'User', id: shop.users[0]!.id }], ...variables }, identityHeaders('orders', ADMIN));
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    });
  });
});
