import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis, demoShop } from '@shop/common';
import { ADMIN, entityGenerations, identityHeaders, graphql } from '@shop/common/testing';
import {
  CANCEL_ORDER,
  UPDATE_STATUS,
  log,
  openQueue,
  orderById,
  placeOrder,
  rowCounts,
  setStock,
  settled,
  startSagaStack,
  stockOf,
  type PlacedOrderJson,
  type SagaStack,
} from './stack.js';

const shop = demoShop();
const product = (i: number) => shop.products[i]!;
const user = (i: number) => shop.users[i]!;
let stack: SagaStack;
let events: Redis;
const received: { name: string; key: string; payload: Record<string, unknown> }[] = [];

beforeAll(async () => {
  stack = await startSagaStack('saga');
  events = createRedis(stack.redis.url, log, { blocking: true });
  events.on('message', (_channel: string, message: string) => received.push(JSON.parse(message) as (typeof received)[number]));
  await events.subscribe(`${stack.redis.prefix}:order-events`);
});
afterAll(async () => {
  events?.disconnect();
  await stack?.close();
});

const inventoryDb = () => stack.inventory!.db;

async function placed(userIndex: number, items: { productId: string; quantity: number }[]): Promise<PlacedOrderJson> {
  const res = await placeOrder(stack.orders.url, user(userIndex).id, items);
  expect(res.errors).toBeUndefined();
  return res.data!.placeOrder;
}

async function reservedUnits(productId: string): Promise<number> {
  const [row] = await inventoryDb().query<{ units: number }>(
    `SELECT coalesce(sum(r.quantity), 0)::int AS units FROM reservations r
     JOIN reservation_outcomes o USING (order_id) WHERE r.product_id = $1 AND o.released_at IS NULL`,
    [productId],
  );
  return row!.units;
}

describe('order saga', () => {
  it('places an order as PENDING with captured prices, then confirms it and takes the stock', async () => {
    const [a, b] = [product(1), product(2)];
    await setStock(inventoryDb(), a.id, 10);
    await setStock(inventoryDb(), b.id, 10);
    const order = await placed(0, [
      { productId: a.id, quantity: 2 },
      { productId: b.id.toUpperCase(), quantity: 3 },
      { productId: a.id, quantity: 1 },
    ]);
    const { ms, status } = await settled(stack.orders.db, order.id);

    expect(order.status).toBe('PENDING');
    expect(order.user).toEqual({ id: user(0).id });
    // The repeated product is one line with the quantities summed.
    expect(order.items).toEqual([
      { product: { id: a.id }, quantity: 3, unitPrice: { amount: a.priceAmount, currency: 'USD' } },
      { product: { id: b.id }, quantity: 3, unitPrice: { amount: b.priceAmount, currency: 'USD' } },
    ]);
    expect(order.total).toEqual({ amount: 3 * a.priceAmount + 3 * b.priceAmount, currency: 'USD' });
    expect(order.statusHistory).toEqual([{ status: 'PENDING', at: expect.any(String), reason: null }]);

    expect(status).toBe('CONFIRMED');
    expect(ms).toBeLessThan(1_000);
    expect(await stockOf(inventoryDb(), a.id)).toBe(7);
    expect(await stockOf(inventoryDb(), b.id)).toBe(7);
    const names = await stack.orders.db.query<{ name: string }>(
      'SELECT product_name AS name FROM order_items WHERE order_id = $1 ORDER BY line',
      [order.id],
    );
    expect(names.map((n) => n.name)).toEqual([a.name, b.name]);

    const now = await orderById(stack.orders.url, order.id);
    expect(now?.status).toBe('CONFIRMED');
    expect(now?.statusHistory.map((h) => h.status)).toEqual(['PENDING', 'CONFIRMED']);
    expect(Date.parse(now!.statusHistory[1]!.at)).toBeGreaterThanOrEqual(Date.parse(now!.statusHistory[0]!.at));
  });

  it('announces every change: an event and a notification job per status, relayed from the outbox', async () => {
    const p = product(11);
    await setStock(inventoryDb(), p.id, 5);
    const order = await placed(1, [{ productId: p.id, quantity: 2 }]);
    await settled(stack.orders.db, order.id);
    await expect.poll(() => received.filter((e) => e.payload.orderId === order.id).map((e) => e.key)).toEqual([
      `${order.id}-PENDING`,
      `${order.id}-CONFIRMED`,
    ]);
    const confirmed = received.find((e) => e.key === `${order.id}-CONFIRMED`)!;
    expect(confirmed).toMatchObject({ name: 'order.status', payload: { userId: user(1).id, status: 'CONFIRMED', reason: null } });
    expect(new Date(confirmed.payload.at as string).toISOString()).toBe(confirmed.payload.at);

    const notifications = openQueue(stack, 'notifications');
    try {
      const job = await notifications.queue.getJob(`order-${order.id}-CONFIRMED`);
      expect(job?.name).toBe('order-status');
      expect(job?.data).toEqual({
        userId: user(1).id,
        orderId: order.id,
        status: 'CONFIRMED',
        reason: null,
        items: [{ productId: p.id, productName: p.name, quantity: 2, unitPrice: { amount: p.priceAmount, currency: 'USD' } }],
        total: { amount: 2 * p.priceAmount, currency: 'USD' },
      });
      expect(job?.opts.attempts).toBeGreaterThan(1);
      expect(await notifications.queue.getJob(`order-${order.id}-PENDING`)).toBeDefined();
    } finally {
      await notifications.close();
    }
    await expect
      .poll(async () => (await stack.orders.db.query('SELECT 1 FROM outbox WHERE relayed_at IS NULL')).length)
      .toBe(0);
  });

  it('rejects an order when one line is short of stock, naming the product, and takes nothing', async () => {
    const [short, plenty] = [product(3), product(4)];
    await setStock(inventoryDb(), short.id, 1);
    await setStock(inventoryDb(), plenty.id, 5);
    const order = await placed(2, [
      { productId: plenty.id, quantity: 1 },
      { productId: short.id, quantity: 2 },
    ]);
    expect((await settled(stack.orders.db, order.id)).status).toBe('REJECTED');
    const reason = `Not enough stock: ${short.name} (2 ordered, 1 available)`;
    const now = await orderById(stack.orders.url, order.id);
    expect(now?.statusReason).toBe(reason);
    expect(now?.statusHistory.map(({ status, reason: why }) => [status, why])).toEqual([
      ['PENDING', null],
      ['REJECTED', reason],
    ]);
    expect(await stockOf(inventoryDb(), short.id)).toBe(1);
    expect(await stockOf(inventoryDb(), plenty.id)).toBe(5);
    expect(await reservedUnits(plenty.id)).toBe(0);
  });

  it('never oversells: 50 concurrent orders of one unit for a stock of 10 give 10 CONFIRMED and 40 REJECTED', async () => {
    const p = product(5);
    await setStock(inventoryDb(), p.id, 10);
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => placeOrder(stack.orders.url, user(i).id, [{ productId: p.id, quantity: 1 }])),
    );
    for (const res of responses) expect(res.errors).toBeUndefined();
    const ids = responses.map((res) => res.data!.placeOrder.id);
    const statuses = await Promise.all(ids.map((id) => settled(stack.orders.db, id, 30_000)));
    const count = (status: string) => statuses.filter((s) => s.status === status).length;
    expect([count('CONFIRMED'), count('REJECTED')]).toEqual([10, 40]);
    expect(await stockOf(inventoryDb(), p.id)).toBe(0);
    expect(await reservedUnits(p.id)).toBe(10);
  });

  it('cancels a CONFIRMED order and gives its stock back once', async () => {
    const p = product(6);
    await setStock(inventoryDb(), p.id, 8);
    const order = await placed(3, [{ productId: p.id, quantity: 5 }]);
    expect((await settled(stack.orders.db, order.id)).status).toBe('CONFIRMED');
    expect(await stockOf(inventoryDb(), p.id)).toBe(3);

    const res = await graphql<{ cancelOrder: PlacedOrderJson }>(stack.orders.url, CANCEL_ORDER, {
      id: order.id,
      reason: '  Changed my mind ',
    }, identityHeaders('orders', ADMIN));
    expect(res.errors).toBeUndefined();
    expect(res.data?.cancelOrder).toMatchObject({ status: 'CANCELLED', statusReason: 'Changed my mind' });
    expect(res.data?.cancelOrder.statusHistory.map(({ status, reason }) => [status, reason])).toEqual([
      ['PENDING', null],
      ['CONFIRMED', null],
      ['CANCELLED', 'Changed my mind'],
    ]);
    await expect.poll(() => stockOf(inventoryDb(), p.id)).toBe(8);

    // A second release of the same order (a redelivery) gives nothing back.
    const reservations = openQueue(stack, 'inventory-reservations');
    try {
      const again = await reservations.queue.add('release', { orderId: order.id }, { jobId: `again-release-${order.id}` });
      await expect.poll(async () => (await again.getState()) as string).toBe('completed');
    } finally {
      await reservations.close();
    }
    expect(await stockOf(inventoryDb(), p.id)).toBe(8);
    expect(await reservedUnits(p.id)).toBe(0);
  });

  it('announces every change to the entity cache, the reserved stock before the order can be seen CONFIRMED', async () => {
    const p = product(14);
    await setStock(inventoryDb(), p.id, 5);
    const generation = async (entity: string) => (await entityGenerations(stack.redis))[entity] ?? 0;
    const stock = await generation(`inventory:Product:${p.id}`);
    const order = await placed(9, [{ productId: p.id, quantity: 2 }]);
    expect((await settled(stack.orders.db, order.id)).status).toBe('CONFIRMED');
    // Inventory announced the units it took before it relayed the result that confirmed the order.
    expect(await generation(`inventory:Product:${p.id}`)).toBe(stock + 1);
    // Placed, then confirmed by the saga's worker.
    await expect.poll(() => generation(`orders:Order:${order.id}`)).toBe(2);

    const res = await graphql(stack.orders.url, CANCEL_ORDER, { id: order.id }, identityHeaders('orders', ADMIN));
    expect(res.errors).toBeUndefined();
    expect(await generation(`orders:Order:${order.id}`)).toBe(3);
    // The release gives the units back, and announces that too.
    await expect.poll(() => generation(`inventory:Product:${p.id}`)).toBe(stock + 2);
    expect(await stockOf(inventoryDb(), p.id)).toBe(5);
  });

  it('ships and delivers a CONFIRMED order, then refuses any further change', async () => {
    const p = product(7);
    await setStock(inventoryDb(), p.id, 3);
    const order = await placed(4, [{ productId: p.id, quantity: 1 }]);
    expect((await settled(stack.orders.db, order.id)).status).toBe('CONFIRMED');

    const refusedDelivery = await graphql(stack.orders.url, UPDATE_STATUS, { id: order.id, status: 'DELIVERED' }, identityHeaders('orders', ADMIN));
    expect(refusedDelivery.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION', status: 'CONFIRMED' });

    for (const status of ['SHIPPED', 'DELIVERED']) {
      const res = await graphql<{ updateOrderStatus: PlacedOrderJson }>(stack.orders.url, UPDATE_STATUS, { id: order.id, status }, identityHeaders('orders', ADMIN));
      expect(res.errors).toBeUndefined();
      expect(res.data?.updateOrderStatus.status).toBe(status);
    }
    const now = await orderById(stack.orders.url, order.id);
    expect(now?.statusHistory.map((h) => h.status)).toEqual(['PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED']);

    const before = await rowCounts(stack.orders.db);
    const cancel = await graphql(stack.orders.url, CANCEL_ORDER, { id: order.id }, identityHeaders('orders', ADMIN));
    expect(cancel.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION', status: 'DELIVERED', requested: 'CANCELLED' });
    expect(cancel.errors?.[0]?.message).toBe(
      `Order ${order.id} is DELIVERED; that is final: it can no longer change. It cannot become CANCELLED.`,
    );
    const back = await graphql(stack.orders.url, UPDATE_STATUS, { id: order.id, status: 'SHIPPED' }, identityHeaders('orders', ADMIN));
    expect(back.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION' });
    expect(await rowCounts(stack.orders.db)).toEqual(before);
    expect((await orderById(stack.orders.url, order.id))?.status).toBe('DELIVERED');
  });

  it('refuses changes to unknown, malformed and REJECTED orders', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const [query, variables] of [
      [CANCEL_ORDER, { id: unknown }],
      [UPDATE_STATUS, { id: unknown, status: 'SHIPPED' }],
      [UPDATE_STATUS, { id: unknown, status: 'CONFIRMED' }],
    ] as const) {
      const res = await graphql(stack.orders.url, query, variables, identityHeaders('orders', ADMIN));
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', id: unknown });
    }
    const malformed = await graphql(stack.orders.url, CANCEL_ORDER, { id: 'order-1' }, identityHeaders('orders', ADMIN));
    expect(malformed.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
    const tooLong = await graphql(stack.orders.url, CANCEL_ORDER, { id: unknown, reason: 'x'.repeat(501) }, identityHeaders('orders', ADMIN));
    expect(tooLong.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'reason' });

    const p = product(9);
    await setStock(inventoryDb(), p.id, 0);
    const order = await placed(5, [{ productId: p.id, quantity: 1 }]);
    expect((await settled(stack.orders.db, order.id)).status).toBe('REJECTED');
    const res = await graphql(stack.orders.url, CANCEL_ORDER, { id: order.id }, identityHeaders('orders', ADMIN));
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION', status: 'REJECTED' });
  });

  it('keeps orders placed while the relay cannot reach Redis, and confirms them once it can', async () => {
    const p = product(8);
    await setStock(inventoryDb(), p.id, 4);
    const relay = stack.orders.runtime!.relay;
    await relay.stop();
    const order = await placed(6, [{ productId: p.id, quantity: 4 }]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const [waiting] = await stack.orders.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox WHERE relayed_at IS NULL AND payload->>'orderId' = $1`,
      [order.id],
    );
    expect(waiting?.n).toBe(3);
    expect((await orderById(stack.orders.url, order.id))?.status).toBe('PENDING');

    // While it waits, a PENDING order can only be cancelled.
    for (const status of ['SHIPPED', 'DELIVERED', 'CONFIRMED']) {
      const res = await graphql(stack.orders.url, UPDATE_STATUS, { id: order.id, status }, identityHeaders('orders', ADMIN));
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION', status: 'PENDING', requested: status });
      expect(res.errors?.[0]?.message).toMatch(/is PENDING; it can only be cancelled/);
    }

    relay.start();
    expect((await settled(stack.orders.db, order.id)).status).toBe('CONFIRMED');
    expect(await stockOf(inventoryDb(), p.id)).toBe(0);
  });

  it('cancels a PENDING order and never keeps its stock, whichever of reserve and release comes first', async () => {
    const p = product(12);
    await setStock(inventoryDb(), p.id, 6);
    const relay = stack.orders.runtime!.relay;
    await relay.stop();
    const order = await placed(7, [{ productId: p.id, quantity: 2 }]);
    const res = await graphql<{ cancelOrder: PlacedOrderJson }>(stack.orders.url, CANCEL_ORDER, { id: order.id }, identityHeaders('orders', ADMIN));
    expect(res.data?.cancelOrder.status).toBe('CANCELLED');
    relay.start();
    await expect.poll(async () => (await stack.orders.db.query('SELECT 1 FROM outbox WHERE relayed_at IS NULL')).length).toBe(0);
    await expect
      .poll(async () => (await inventoryDb().query('SELECT 1 FROM reservation_outcomes WHERE order_id = $1', [order.id])).length)
      .toBe(1);
    await expect.poll(() => reservedUnits(p.id)).toBe(0);
    expect(await stockOf(inventoryDb(), p.id)).toBe(6);
    expect((await orderById(stack.orders.url, order.id))?.status).toBe('CANCELLED');
  });

  it('asks inventory to release when a reservation arrives for an order cancelled meanwhile', async () => {
    const p = product(13);
    await setStock(inventoryDb(), p.id, 6);
    const relay = stack.orders.runtime!.relay;
    await relay.stop();
    const order = await placed(8, [{ productId: p.id, quantity: 2 }]);
    await graphql(stack.orders.url, CANCEL_ORDER, { id: order.id }, identityHeaders('orders', ADMIN));
    const releases = () =>
      stack.orders.db.query(`SELECT 1 FROM outbox WHERE name = 'release' AND key = $1`, [`release-${order.id}`]);
    expect(await releases()).toHaveLength(1);

    // What inventory sends after reserving: the order is CANCELLED by now, so orders asks for a release again.
    const results = openQueue(stack, 'order-reservation-results');
    try {
      const job = await results.queue.add('reserved', { orderId: order.id }, { jobId: `late-${order.id}` });
      await expect.poll(async () => (await job.getState()) as string).toBe('completed');
      expect((await results.queue.getJob(job.id!))?.returnvalue).toBe('released');
    } finally {
      await results.close();
    }
    expect(await releases()).toHaveLength(2);
    expect((await orderById(stack.orders.url, order.id))?.status).toBe('CANCELLED');
    relay.start();
  });

  it('fails a malformed reservation result at once instead of retrying it', async () => {
    const results = openQueue(stack, 'order-reservation-results');
    try {
      const bad = await results.queue.add('reserved', { orderId: 'nope' }, { jobId: 'malformed-result', attempts: 5 });
      const unknown = await results.queue.add(
        'rejected',
        { orderId: '00000000-0000-4000-8000-000000000001' },
        { jobId: 'unknown-order-result', attempts: 5 },
      );
      for (const job of [bad, unknown]) {
        await expect.poll(async () => (await job.getState()) as string).toBe('failed');
        expect((await results.queue.getJob(job.id!))?.attemptsMade).toBe(1);
      }
    } finally {
      await results.close();
    }
  });
});
