import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, demoShop, serveSubgraph, type RedisEvents, type RunningSubgraph } from '@shop/common';
import { graphql } from '@shop/common/testing';
import { orders, type OrdersRuntime } from '@shop/orders';
import { COMMITTED_SUPERGRAPH, startRouter, startStack, type Stack } from './stack.js';

const shop = demoShop();
const PLACE = 'mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }';
const ORDER_FIELDS = 'id status user { name } items { quantity product { name } }';

interface LiveOrder {
  id: string;
  status: string;
  user: { name: string };
  items: { quantity: number; product: { name: string } }[];
}

let stack: Stack;
/** The administrator may follow and place anyone's orders; the per-customer rules have auth.e2e.ts. */
let admin: Record<string, string>;
const clients: Client[] = [];

function wsClient(httpUrl: string, as: () => Record<string, string> = () => admin): Client {
  const client = createClient({
    url: httpUrl.replace('http', 'ws'),
    webSocketImpl: WebSocket,
    lazy: true,
    retryAttempts: 0,
    connectionParams: () => ({ authorization: as().authorization }),
  });
  clients.push(client);
  return client;
}

/** Subscribes; `events` fills as events arrive, each with the time it arrived. */
function follow(client: Client, query: string, variables: Record<string, unknown>) {
  const events: { order: LiveOrder; at: number }[] = [];
  const errors: unknown[] = [];
  const stop = client.subscribe<Record<string, LiveOrder>>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) errors.push(result.errors);
        const order = result.data && Object.values(result.data)[0];
        if (order) events.push({ order, at: performance.now() });
      },
      error: (error) => errors.push(error),
      complete: () => undefined,
    },
  );
  return { events, errors, stop };
}

/** The Redis listeners of the stack's orders subgraph. */
function ordersEvents(): RedisEvents {
  return (stack.subgraphs.orders.runtime as OrdersRuntime).events;
}

/** A product with plenty of stock and the buyer to order it. */
const product = shop.products.find((p) => p.stock > 100)!;
const buyer = shop.users[5]!;

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.auth('admin');
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await stack?.stop();
});

describe('live order status through the router', () => {
  it('shows PENDING then CONFIRMED within a second of placeOrder, with fields from users and products', async () => {
    const client = wsClient(stack.url);
    const updates = follow(client, `subscription($u: ID!) { orderUpdates(userId: $u) { ${ORDER_FIELDS} } }`, { u: buyer.id });
    await expect.poll(() => ordersEvents().listenerCount, { timeout: 5_000 }).toBe(1);

    const placed = await graphql<{ placeOrder: { id: string; status: string } }>(stack.url, PLACE, {
      input: { userId: buyer.id, items: [{ productId: product.id, quantity: 2 }] },
    }, admin);
    const placedAt = performance.now();
    expect(placed.errors).toBeUndefined();
    const id = placed.data!.placeOrder.id;
    const single = follow(client, `subscription($id: ID!) { orderStatusChanged(orderId: $id) { ${ORDER_FIELDS} } }`, { id });

    await expect.poll(() => updates.events.map((e) => e.order.status), { timeout: 5_000 }).toEqual(['PENDING', 'CONFIRMED']);
    await expect.poll(() => single.events.at(-1)?.order.status, { timeout: 5_000 }).toBe('CONFIRMED');
    const confirmedAt = updates.events[1]!.at;
    expect(confirmedAt - placedAt).toBeLessThan(1_000);

    for (const { order } of [...updates.events, ...single.events]) {
      expect(order).toMatchObject({ id, user: { name: buyer.name }, items: [{ quantity: 2, product: { name: product.name } }] });
    }
    // orderStatusChanged starts with the order as it is, then each change: never a step back.
    const seen = single.events.map((e) => e.order.status);
    expect(['PENDING,CONFIRMED', 'CONFIRMED']).toContain(seen.join(','));
    expect(updates.errors).toEqual([]);
    expect(single.errors).toEqual([]);
    updates.stop();
    single.stop();

    // Each step was also sent to the customer, once, and can be read back through the graph.
    const notificationsOf = async () => {
      const res = await graphql<{ user: { notifications: { edges: { node: { kind: string; subject: string; text: string } }[] } } }>(
        stack.url,
        'query($u: ID!) { user(id: $u) { notifications(first: 20) { edges { node { kind subject text } } } } }',
        { u: buyer.id },
        admin,
      );
      return res.data?.user.notifications.edges.map((e) => e.node).filter((n) => n.kind !== 'WELCOME') ?? [];
    };
    await expect.poll(async () => (await notificationsOf()).map((n) => n.kind).sort(), { timeout: 10_000 }).toEqual([
      'ORDER_CONFIRMED',
      'ORDER_PLACED',
    ]);
    for (const note of await notificationsOf()) {
      expect(note.text).toContain(buyer.name.split(' ')[0]);
      expect(note.text).toContain(product.name);
    }
  });

  it('answers NOT_FOUND for an unknown order and BAD_USER_INPUT for a malformed id', async () => {
    const client = wsClient(stack.url);
    const unknown = follow(client, `subscription { orderStatusChanged(orderId: "00000000-0000-4000-8000-000000000000") { id } }`, {});
    const malformed = follow(client, `subscription { orderStatusChanged(orderId: "42") { id } }`, {});
    await expect.poll(() => unknown.errors.length + malformed.errors.length, { timeout: 5_000 }).toBe(2);
    expect(JSON.stringify(unknown.errors)).toContain('NOT_FOUND');
    expect(JSON.stringify(malformed.errors)).toContain('BAD_USER_INPUT');
  });

  it('delivers events across instances: placed through router A and orders A, seen through router B and orders B', async () => {
    const log = createLogger('orders-b', 'silent');
    const db = stack.subgraphs.orders.db;
    const runtime = (await orders.startRuntime!(db, stack.env, log)) as OrdersRuntime;
    const ordersB: RunningSubgraph = await serveSubgraph(orders, db, { port: 0, host: '127.0.0.1', production: false, log, runtime });
    const routerB = await startRouter(COMMITTED_SUPERGRAPH, {
      users: stack.subgraphs.users.url,
      products: stack.subgraphs.products.url,
      inventory: stack.subgraphs.inventory.url,
      orders: ordersB.http.url,
    });
    try {
      const other = shop.users[9]!;
      const updates = follow(wsClient(routerB.url), `subscription($u: ID!) { orderUpdates(userId: $u) { ${ORDER_FIELDS} } }`, { u: other.id });
      await expect.poll(() => runtime.events.listenerCount, { timeout: 5_000 }).toBe(1);
      const placed = await graphql<{ placeOrder: { id: string } }>(stack.url, PLACE, {
        input: { userId: other.id, items: [{ productId: product.id, quantity: 1 }] },
      }, admin);
      expect(placed.errors).toBeUndefined();
      await expect.poll(() => updates.events.map((e) => e.order.status), { timeout: 5_000 }).toEqual(['PENDING', 'CONFIRMED']);
      expect(updates.events[1]!.order).toMatchObject({ id: placed.data!.placeOrder.id, user: { name: other.name } });
      updates.stop();
    } finally {
      await routerB.stop();
      await ordersB.stop();
      await runtime.stop();
    }
  });

  it('shares one upstream subscription among identical subscribers, never across callers, each getting every change in order', async () => {
    const order = shop.orders.filter((o) => o.status === 'CONFIRMED').at(-1)!;
    const owner = await stack.auth(order.userId);
    const query = `subscription($id: ID!) { orderStatusChanged(orderId: $id) { ${ORDER_FIELDS} } }`;
    const statuses = (sub: ReturnType<typeof follow>) => sub.events.map((e) => e.order.status);
    const adminA = wsClient(stack.url);
    const adminB = wsClient(stack.url);
    // Four identical subscribers of the administrator (two sockets), one of the order's customer.
    const same = [follow(adminA, query, { id: order.id }), follow(adminA, query, { id: order.id }), follow(adminB, query, { id: order.id }), follow(adminB, query, { id: order.id })];
    const customer = follow(wsClient(stack.url, () => owner), query, { id: order.id });
    const all = [...same, customer];
    await expect.poll(() => all.every((s) => s.events.length === 1), { timeout: 10_000 }).toBe(true);
    // One upstream subscription per caller: the router's count, and the orders subgraph's Redis listeners.
    expect(stack.router.subscriptions.openCount).toBe(5);
    expect(stack.router.subscriptions.upstreamCount).toBe(2);
    expect(ordersEvents().listenerCount).toBe(2);

    const change = async (status: string) => {
      const res = await graphql(stack.url, 'mutation($id: ID!, $s: OrderStatus!) { updateOrderStatus(id: $id, status: $s) { id } }', { id: order.id, s: status }, admin);
      expect(res.errors).toBeUndefined();
    };
    await change('SHIPPED');
    await expect.poll(() => all.every((s) => statuses(s).at(-1) === 'SHIPPED'), { timeout: 5_000 }).toBe(true);

    // One leaving ends only its own; a late joiner starts with the order as it is now, then gets each change.
    same[0]!.stop();
    await expect.poll(() => stack.router.subscriptions.openCount, { timeout: 5_000 }).toBe(4);
    const late = follow(adminB, query, { id: order.id });
    await expect.poll(() => statuses(late), { timeout: 5_000 }).toEqual(['SHIPPED']);
    expect(stack.router.subscriptions.upstreamCount).toBe(2);
    expect(ordersEvents().listenerCount).toBe(2);
    await change('DELIVERED');
    await expect.poll(() => statuses(late), { timeout: 5_000 }).toEqual(['SHIPPED', 'DELIVERED']);
    await expect.poll(() => [...same.slice(1), customer].every((s) => statuses(s).length === 3), { timeout: 5_000 }).toBe(true);

    expect(statuses(same[0]!)).toEqual(['CONFIRMED', 'SHIPPED']);
    for (const sub of [...same.slice(1), customer]) expect(statuses(sub)).toEqual(['CONFIRMED', 'SHIPPED', 'DELIVERED']);
    const expected = {
      id: order.id,
      user: { name: shop.users.find((u) => u.id === order.userId)!.name },
      items: order.lines.map((line) => ({ quantity: line.quantity, product: { name: shop.products.find((p) => p.id === line.productId)!.name } })),
    };
    for (const sub of [...all, late]) {
      expect(sub.errors).toEqual([]);
      for (const { order: event } of sub.events) expect(event).toEqual({ ...expected, status: event.status });
    }
    for (const sub of [...same.slice(1), customer, late]) sub.stop();
    await expect.poll(() => stack.router.subscriptions.upstreamCount, { timeout: 5_000 }).toBe(0);
    await expect.poll(() => ordersEvents().listenerCount, { timeout: 5_000 }).toBe(0);
  });

  it('releases the router and Redis listeners when clients disconnect, over many cycles', async () => {
    const events = ordersEvents();
    for (let cycle = 0; cycle < 3; cycle++) {
      const client = wsClient(stack.url);
      const subs = shop.orders.slice(0, 25).map((o) =>
        follow(client, `subscription($id: ID!) { orderStatusChanged(orderId: $id) { ${ORDER_FIELDS} } }`, { id: o.id }),
      );
      await expect.poll(() => subs.every((s) => s.events.length === 1), { timeout: 10_000 }).toBe(true);
      expect(events.listenerCount).toBe(25);
      // Half unsubscribe, the rest go away with the socket.
      subs.slice(0, 12).forEach((s) => s.stop());
      await client.dispose();
      await expect.poll(() => stack.router.subscriptions.openCount, { timeout: 10_000 }).toBe(0);
      await expect.poll(() => events.listenerCount, { timeout: 10_000 }).toBe(0);
    }
  });
});
