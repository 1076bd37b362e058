import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_IDENTITY_SECRET, createLogger, createRedis, demoShop, signIdentity, type Identity, type Queryable } from '@shop/common';
import { ADMIN, countStatements, createTestRedis, customer, startTestSubgraph, type TestRedis, type TestSubgraph } from '@shop/common/testing';
import { orders, type OrdersRuntime } from '../src/server.js';
import { OrderReads } from '../src/subscriptions.js';

const shop = demoShop();
const confirmed = shop.orders.filter((o) => o.status === 'CONFIRMED');

let subgraph: TestSubgraph & { runtime: OrdersRuntime | undefined };
let redis: TestRedis;
let publisher: Redis;
let client: Client;

beforeAll(async () => {
  redis = await createTestRedis('orders-subscriptions');
  subgraph = (await startTestSubgraph(orders, { seed: true, env: { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix } })) as typeof subgraph;
  // Events are published by the test; the relay's outbox polls would add to the statements counted.
  await subgraph.runtime!.relay.stop();
  publisher = createRedis(redis.url, createLogger('test', 'silent'));
  client = createClient({ url: subgraph.url.replace('http', 'ws'), webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
});
afterAll(async () => {
  await client?.dispose();
  publisher?.disconnect();
  await subgraph?.close();
  await redis?.cleanup();
});

describe('shared order reads', () => {
  it('gives the reads asked for in one tick one statement', async () => {
    const order = confirmed[0]!;
    const reads = new OrderReads(subgraph.db);
    let rows: unknown[] = [];
    const statements = await countStatements(subgraph.db, async () => {
      rows = await Promise.all([reads.read(order.id), reads.read(order.id), reads.read(order.id)]);
    });
    expect(statements).toBe(1);
    expect(rows.map((r) => (r as { status: string }).status)).toEqual(['CONFIRMED', 'CONFIRMED', 'CONFIRMED']);
  });

  it('never answers a read with one that started before it was asked for, and reads one order one at a time', async () => {
    const order = confirmed[1]!;
    // The real database; the first statement's answer is held back, so that read is still in flight meanwhile.
    const log: string[] = [];
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const db: Queryable = {
      query: async <R extends object>(sql: string, params?: readonly unknown[]) => {
        const n = ++calls;
        log.push(`start ${n}`);
        const rows = await subgraph.db.query<R>(sql, params);
        if (n === 1) await held;
        log.push(`end ${n}`);
        return rows;
      },
    };
    const reads = new OrderReads(db);
    const before = reads.read(order.id);
    await expect.poll(() => log).toEqual(['start 1']);
    await subgraph.db.query(`UPDATE orders SET status = 'SHIPPED' WHERE id = $1`, [order.id]);
    // Asked after the change committed, while the first read is in flight: it must not get that read's answer.
    const after = reads.read(order.id);
    release();
    expect((await before)?.status).toBe('CONFIRMED');
    expect((await after)?.status).toBe('SHIPPED');
    expect(log).toEqual(['start 1', 'end 1', 'start 2', 'end 2']);
  });
});

describe('orderStatusChanged subscriptions of one order', () => {
  /** Subscribes over the subgraph's own socket as the router does: the caller's signed identity in the extensions. */
  function follow(orderId: string, identity: Identity) {
    const statuses: string[] = [];
    const errors: unknown[] = [];
    const stop = client.subscribe<{ orderStatusChanged: { status: string } }>(
      {
        query: 'subscription($id: ID!) { orderStatusChanged(orderId: $id) { id status } }',
        variables: { id: orderId },
        extensions: { identity: signIdentity(identity, 'orders', DEV_IDENTITY_SECRET) },
      },
      {
        next: (result) => {
          if (result.errors) errors.push(result.errors);
          if (result.data) statuses.push(result.data.orderStatusChanged.status);
        },
        error: (error) => errors.push(error),
        complete: () => undefined,
      },
    );
    return { statuses, errors, stop };
  }

  const publish = (order: (typeof confirmed)[number], status: string) =>
    publisher.publish(
      `${redis.prefix}:order-events`,
      JSON.stringify({
        name: 'order.status',
        key: `${order.id}-${status}`,
        payload: { orderId: order.id, userId: order.userId, status, at: new Date().toISOString(), reason: null },
      }),
    );

  it('reads the order once per event for all its subscriptions, and each sends every change in order', async () => {
    const order = confirmed[2]!;
    const subs = [follow(order.id, customer(order.userId)), follow(order.id, ADMIN), follow(order.id, ADMIN)];
    await expect.poll(() => subs.every((s) => s.statuses.length === 1), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => subgraph.runtime!.events.listenerCount, { timeout: 5_000 }).toBe(3);

    const changes: [string, string][] = [
      ['SHIPPED', `UPDATE orders SET status = 'SHIPPED' WHERE id = $1`],
      ['DELIVERED', `UPDATE orders SET status = 'DELIVERED' WHERE id = $1`],
    ];
    for (const [status, sql] of changes) {
      await subgraph.db.query(sql, [order.id]);
      const statements = await countStatements(subgraph.db, async () => {
        await publish(order, status);
        await expect.poll(() => subs.every((s) => s.statuses.at(-1) === status), { timeout: 5_000 }).toBe(true);
        // Any read still to come would have been sent by now.
        await sleep(100);
      });
      expect(statements).toBe(1);
    }
    for (const sub of subs) {
      expect(sub.errors).toEqual([]);
      expect(sub.statuses).toEqual(['CONFIRMED', 'SHIPPED', 'DELIVERED']);
    }
    // A repeated event changes nothing: the status was sent already.
    await publish(order, 'DELIVERED');
    await sleep(200);
    for (const sub of subs) expect(sub.statuses).toEqual(['CONFIRMED', 'SHIPPED', 'DELIVERED']);
    for (const sub of subs) sub.stop();
    await expect.poll(() => subgraph.runtime!.events.listenerCount, { timeout: 5_000 }).toBe(0);
  });

  it('sends the order an event carries without reading it, in order, and drops an older state that arrives late', async () => {
    const order = confirmed[3]!;
    const sub = follow(order.id, ADMIN);
    await expect.poll(() => sub.statuses.length, { timeout: 10_000 }).toBe(1);
    // The state each change left, as the outbox writes it; the database is not touched, so only the events tell.
    const [row] = await subgraph.db.query<{ createdAt: Date; updatedAt: Date; items: unknown[]; currency: string }>(
      `SELECT created_at AS "createdAt", updated_at AS "updatedAt", currency,
         (SELECT json_agg(json_build_object('productId', product_id, 'productName', product_name, 'quantity', quantity,
           'unitPriceAmount', unit_price_amount, 'currency', $2::text) ORDER BY line) FROM order_items WHERE order_id = $1) AS items
       FROM orders WHERE id = $1`,
      [order.id, order.currency],
    );
    const carried = (status: string, at: Date) => ({
      name: 'order.status',
      key: `${order.id}-${status}`,
      payload: {
        orderId: order.id,
        userId: order.userId,
        status,
        at: at.toISOString(),
        reason: null,
        order: {
          id: order.id,
          userId: order.userId,
          status,
          statusReason: null,
          currency: row!.currency,
          items: row!.items,
          createdAt: row!.createdAt.toISOString(),
          updatedAt: at.toISOString(),
        },
      },
    });
    const shippedAt = new Date(row!.updatedAt.getTime() + 1_000);
    const deliveredAt = new Date(row!.updatedAt.getTime() + 2_000);
    const channel = `${redis.prefix}:order-events`;
    const statements = await countStatements(subgraph.db, async () => {
      await publisher.publish(channel, JSON.stringify(carried('SHIPPED', shippedAt)));
      await publisher.publish(channel, JSON.stringify(carried('DELIVERED', deliveredAt)));
      // Relayed again, late: older than what was sent, and a repeat.
      await publisher.publish(channel, JSON.stringify(carried('SHIPPED', shippedAt)));
      await publisher.publish(channel, JSON.stringify(carried('DELIVERED', deliveredAt)));
      await expect.poll(() => sub.statuses.at(-1), { timeout: 5_000 }).toBe('DELIVERED');
      await sleep(200);
    });
    expect(statements).toBe(0);
    expect(sub.errors).toEqual([]);
    expect(sub.statuses).toEqual(['CONFIRMED', 'SHIPPED', 'DELIVERED']);
    sub.stop();
  });

  it('wakes only the subscriptions of the order an event is about', async () => {
    const [a, b] = [confirmed[4]!, confirmed[5]!];
    const subA = follow(a.id, ADMIN);
    const subB = follow(b.id, ADMIN);
    await expect.poll(() => subA.statuses.length + subB.statuses.length, { timeout: 10_000 }).toBe(2);
    await subgraph.db.query(`UPDATE orders SET status = 'SHIPPED' WHERE id = $1`, [a.id]);
    // Without the order in the event, each woken subscription reads it: one statement means B was not woken.
    const statements = await countStatements(subgraph.db, async () => {
      await publish(a, 'SHIPPED');
      await expect.poll(() => subA.statuses.at(-1), { timeout: 5_000 }).toBe('SHIPPED');
      await sleep(100);
    });
    expect(statements).toBe(1);
    expect(subB.statuses).toEqual(['CONFIRMED']);
    subA.stop();
    subB.stop();
  });
});
