import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import {
  ADMIN,
  customer,
  generationChanges,
  graphql,
  identityHeaders,
  startTestSubgraph,
  untilReady,
  type TestSubgraph,
} from '@shop/common/testing';
import { orders } from '../src/server.js';
import { CANCEL_ORDER, UPDATE_STATUS, openQueue, placeOrder, startSagaStack, type SagaStack } from './stack.js';

const shop = demoShop();
let stack: SagaStack;
/** Orders started without its runtime: it changes nothing and must not say that it keeps the contract. */
let bare: TestSubgraph;

interface OrderRef {
  id: string;
  userId: string;
}

/** The generations an order's change must grow: the Order, and its user's User.orders. */
const announced = (order: OrderRef) => ({ [`orders:Order:${order.id}`]: 1, [`orders:User:${order.userId}`]: 1 });

// No inventory, and the orders relay stopped: nothing but the change under test moves a generation (no saga,
// no notification recorded by the users worker). Reservation results are added by the tests, as inventory would.
beforeAll(async () => {
  stack = await startSagaStack('orders-invalidation', { inventory: false });
  await stack.orders.runtime!.relay.stop();
  bare = await startTestSubgraph(orders, { seed: true, runtime: false });
  await Promise.all([stack.orders, stack.users, stack.products].map((subgraph) => untilReady(subgraph)));
});
afterAll(async () => {
  await bare?.close();
  await stack?.close();
});

/** Adds a reservation result as inventory's relay would and waits until the orders worker is done with it. */
async function deliver(name: 'reserved' | 'rejected', orderId: string, jobId: string): Promise<unknown> {
  const results = openQueue(stack, 'order-reservation-results');
  try {
    const job = await results.queue.add(name, { orderId, reason: name === 'rejected' ? 'No stock' : undefined }, { jobId });
    await expect.poll(async () => (await job.getState()) as string).toBe('completed');
    return (await results.queue.getJob(jobId))?.returnvalue;
  } finally {
    await results.close();
  }
}

/** Places a PENDING order for a demo user, checking that the answer says it keeps the contract. */
async function place(userIndex: number): Promise<OrderRef> {
  const userId = shop.users[userIndex]!.id;
  const res = await placeOrder(stack.orders.url, userId, [{ productId: shop.products[4]!.id, quantity: 1 }]);
  expect(res.errors).toBeUndefined();
  expect(res.headers.get('x-shop-entity-cache')).toBe('1');
  return { id: res.data!.placeOrder.id, userId };
}

const admin = identityHeaders('orders', ADMIN);

describe('orders subgraph: entity cache contract', () => {
  it('increments the new Order and its User (User.orders) before placeOrder answers', async () => {
    const { result: order, changed } = await generationChanges(stack.redis, () => place(3));
    expect(changed).toEqual(announced(order));
  });

  it('increments the Order and its User when the saga confirms or rejects it, before the job completes', async () => {
    const [confirmed, rejected] = [await place(4), await place(4)];
    for (const [order, outcome] of [
      [confirmed, 'reserved'],
      [rejected, 'rejected'],
    ] as const) {
      const { result, changed } = await generationChanges(stack.redis, () => deliver(outcome, order.id, `result-${order.id}`));
      expect(result).toBe('changed');
      expect(changed).toEqual(announced(order));
    }
    // A repeated result changes nothing, but the run that applied it may have died before announcing the change.
    const { result, changed } = await generationChanges(stack.redis, () => deliver('reserved', confirmed.id, `again-${confirmed.id}`));
    expect(result).toBe('ignored');
    expect(changed).toEqual(announced(confirmed));
  });

  it('increments the Order and its User for every status change a client makes, and nothing for one it refuses', async () => {
    const [shipped, cancelled] = [await place(5), await place(5)];
    expect(await deliver('reserved', shipped.id, `result-${shipped.id}`)).toBe('changed');
    const customerOf = identityHeaders('orders', customer(cancelled.userId));
    const changes: [OrderRef, string, Record<string, unknown>, Record<string, string>][] = [
      [shipped, UPDATE_STATUS, { id: shipped.id, status: 'SHIPPED' }, admin],
      [shipped, UPDATE_STATUS, { id: shipped.id, status: 'DELIVERED' }, admin],
      [cancelled, CANCEL_ORDER, { id: cancelled.id, reason: 'Changed my mind' }, customerOf],
    ];
    for (const [order, mutation, variables, headers] of changes) {
      const { result: res, changed } = await generationChanges(stack.redis, () => graphql(stack.orders.url, mutation, variables, headers));
      expect(res.errors).toBeUndefined();
      expect(changed).toEqual(announced(order));
    }

    const { result: refused, changed } = await generationChanges(stack.redis, () =>
      graphql(stack.orders.url, CANCEL_ORDER, { id: shipped.id }, admin),
    );
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION', status: 'DELIVERED' });
    expect(changed).toEqual({});
  });

  it('without a runtime serves reads without saying that it keeps the contract', async () => {
    const order = shop.orders[0]!;
    const res = await graphql(bare.url, `query($id: ID!) { order(id: $id) { id } }`, { id: order.id }, bare.as(ADMIN));
    expect(res.data).toEqual({ order: { id: order.id } });
    expect(res.headers.get('x-shop-entity-cache')).toBeNull();
  });
});
