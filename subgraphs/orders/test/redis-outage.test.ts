import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import { orders, type OrdersRuntime } from '../src/server.js';
import { log, openQueue, orderById, placeOrder, setStock, settled, startSagaStack, stockOf, type SagaStack } from './stack.js';

const shop = demoShop();
let stack: SagaStack;
let recovered: OrdersRuntime | undefined;

// Orders starts with a Redis URL where nothing listens; inventory and the rest have the real one.
beforeAll(async () => {
  stack = await startSagaStack('redis-outage', { ordersEnv: { REDIS_URL: 'redis://127.0.0.1:1' } });
});
afterAll(async () => {
  await recovered?.stop();
  await stack?.close();
});

describe('orders while Redis is unreachable', () => {
  it('accepts the order, keeps its messages, and confirms it and sends its notifications once Redis is back', async () => {
    const product = shop.products[20]!;
    await setStock(stack.inventory!.db, product.id, 9);
    const res = await placeOrder(stack.orders.url, shop.users[0]!.id, [{ productId: product.id, quantity: 4 }]);
    expect(res.errors).toBeUndefined();
    const order = res.data!.placeOrder;
    expect(order.status).toBe('PENDING');

    await sleep(1_000);
    expect((await orderById(stack.orders.url, order.id))?.status).toBe('PENDING');
    const waiting = await stack.orders.db.query<{ name: string }>(
      'SELECT name FROM outbox WHERE relayed_at IS NULL ORDER BY id',
    );
    expect(waiting.map((row) => row.name)).toEqual(['order.status', 'order-status', 'reserve']);
    expect(await stockOf(stack.inventory!.db, product.id)).toBe(9);

    // Redis is back: the process restarts its runtime with a reachable Redis.
    await stack.orders.runtime!.stop();
    recovered = await orders.startRuntime!(stack.orders.db, stack.env, log);
    expect((await settled(stack.orders.db, order.id)).status).toBe('CONFIRMED');
    expect(await stockOf(stack.inventory!.db, product.id)).toBe(5);

    const notifications = openQueue(stack, 'notifications');
    try {
      for (const status of ['PENDING', 'CONFIRMED']) {
        const job = await notifications.queue.getJob(`order-${order.id}-${status}`);
        expect(job?.data).toMatchObject({ orderId: order.id, status, items: [{ productName: product.name, quantity: 4 }] });
      }
    } finally {
      await notifications.close();
    }
  });
});
