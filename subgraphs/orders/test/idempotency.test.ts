import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop, type Identity } from '@shop/common';
import { ADMIN, customer, graphql } from '@shop/common/testing';
import { findIdempotencyKey, pruneIdempotencyKeys } from '../src/db.js';
import { IdempotencyKeyPruner } from '../src/key-pruner.js';
import { placeOrder as placeDirectly } from '../src/lifecycle.js';
import type { OrdersRuntime } from '../src/runtime.js';
import { CANCEL_ORDER, PLACE_ORDER, UPDATE_STATUS, log, rowCounts as countRows, startSagaStack, type PlacedOrderJson, type SagaStack } from './stack.js';

const shop = demoShop();
const alice = shop.users[0]!.id;
const bob = shop.users[1]!.id;
const p = (i: number) => shop.products[i]!.id;
const line = (productId: string, quantity = 1) => ({ productId, quantity });
const newKey = () => `checkout-${randomUUID()}`;
let stack: SagaStack;
let runtime: OrdersRuntime;

// No inventory: orders stay PENDING, which is all placing and cancelling need.
beforeAll(async () => {
  stack = await startSagaStack('idempotency', { inventory: false });
  runtime = stack.orders.runtime!;
});
afterAll(() => stack?.close());

interface RowCounts {
  orders: number;
  items: number;
  changes: number;
  outbox: number;
}

/** Rows in the tables placeOrder writes to. */
async function rowCounts(db: SagaStack['orders']['db']): Promise<RowCounts> {
  const counts = await countRows(db);
  return { orders: counts.orders ?? 0, items: counts.items ?? 0, changes: counts.changes ?? 0, outbox: counts.outbox ?? 0 };
}

interface PlaceInput {
  userId?: string;
  items: { productId: string; quantity: number }[];
  idempotencyKey?: string;
}

function place(identity: Identity, input: PlaceInput) {
  return graphql<{ placeOrder: PlacedOrderJson }>(stack.orders.url, PLACE_ORDER, { input }, stack.orders.as(identity));
}

async function placed(identity: Identity, input: PlaceInput): Promise<PlacedOrderJson> {
  const res = await place(identity, input);
  expect(res.errors).toBeUndefined();
  return res.data!.placeOrder;
}

function cancel(identity: Identity, id: string, reason?: string) {
  return graphql<{ cancelOrder: PlacedOrderJson }>(stack.orders.url, CANCEL_ORDER, { id, reason }, stack.orders.as(identity));
}

/** The orders recorded under a key, whoever's. */
async function ordersOfKey(key: string): Promise<string[]> {
  const rows = await stack.orders.db.query<{ orderId: string }>(
    'SELECT order_id AS "orderId" FROM order_idempotency_keys WHERE key = $1 ORDER BY order_id',
    [key],
  );
  return rows.map((row) => row.orderId);
}

/** Counts the requests this process sends to the users and products subgraphs while `fn` runs. */
async function lookUpsDuring(fn: () => Promise<void>): Promise<number> {
  let count = 0;
  const original = globalThis.fetch;
  // Only observes: the requests still go to the real subgraphs.
  globalThis.fetch = (input, init) => {
    if (String(input) !== stack.orders.url) count++;
    return original(input, init);
  };
  try {
    await fn();
  } finally {
    globalThis.fetch = original;
  }
  return count;
}

/** The real catalog, whose product look-ups all wait until `n` placements have made one: they race past it together. */
function togetherAfterLookUp(n: number): Pick<OrdersRuntime['catalog'], 'existingUsers' | 'products'> {
  let arrived = 0;
  let release!: () => void;
  const allThere = new Promise<void>((resolve) => (release = resolve));
  return {
    existingUsers: (ids, requestId) => runtime.catalog.existingUsers(ids, requestId),
    products: async (ids, requestId) => {
      const found = await runtime.catalog.products(ids, requestId);
      if (++arrived === n) release();
      await allThere;
      return found;
    },
  };
}

describe('placeOrder with an idempotency key', () => {
  it('answers a retry with the order first placed, as it is now, without placing or looking anything up', async () => {
    const key = newKey();
    const first = await placed(customer(alice), { items: [line(p(0), 2), line(p(1))], idempotencyKey: key });
    expect(first.status).toBe('PENDING');
    const before = await rowCounts(stack.orders.db);

    let retry: PlacedOrderJson | undefined;
    const lookUps = await lookUpsDuring(async () => {
      retry = await placed(customer(alice), { items: [line(p(0), 2), line(p(1))], idempotencyKey: key });
    });
    expect(lookUps).toBe(0);
    expect(retry).toEqual(first);
    expect(await rowCounts(stack.orders.db)).toEqual(before);
    expect(await ordersOfKey(key)).toEqual([first.id]);

    // The order as it is now: a retry after a cancellation answers the cancelled order.
    expect((await cancel(customer(alice), first.id)).errors).toBeUndefined();
    const later = await placed(customer(alice), { items: [line(p(0), 2), line(p(1))], idempotencyKey: key });
    expect(later.id).toBe(first.id);
    expect(later.status).toBe('CANCELLED');
    expect(later.statusHistory.map((change) => change.status)).toEqual(['PENDING', 'CANCELLED']);
  });

  it('takes the same products in another order, or split over lines, for the same order', async () => {
    const key = newKey();
    const first = await placed(customer(alice), { items: [line(p(2), 2), line(p(3))], idempotencyKey: key });
    const reordered = await placed(customer(alice), { items: [line(p(3)), line(p(2)), line(p(2))], idempotencyKey: key });
    expect(reordered.id).toBe(first.id);
    expect(reordered.items.map((item) => [item.product.id, item.quantity])).toEqual([
      [p(2), 2],
      [p(3), 1],
    ]);
  });

  it('places one order when five placements with one key arrive at once', async () => {
    const key = newKey();
    const before = await rowCounts(stack.orders.db);
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => place(customer(alice), { items: [line(p(4), 3)], idempotencyKey: key })),
    );
    for (const answer of answers) expect(answer.errors).toBeUndefined();
    const ids = new Set(answers.map((answer) => answer.data!.placeOrder.id));
    expect(ids.size).toBe(1);
    expect(await ordersOfKey(key)).toEqual([...ids]);
    const after = await rowCounts(stack.orders.db);
    expect(after.orders - before.orders).toBe(1);
    expect(after.items - before.items).toBe(1);
    expect(after.changes - before.changes).toBe(1);
  });

  it('places one order when five placements with one key are all past the look-ups before any writes', async () => {
    const key = newKey();
    const before = await rowCounts(stack.orders.db);
    const deps = { ...runtime, catalog: togetherAfterLookUp(5) };
    const orders = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        placeDirectly(deps, { userId: alice, items: [line(p(5)), line(p(6), 2)], idempotencyKey: key }, `race-${i}`),
      ),
    );
    expect(new Set(orders.map((order) => order.id)).size).toBe(1);
    expect(orders.map((order) => order.status)).toEqual(Array(5).fill('PENDING'));
    expect(await ordersOfKey(key)).toEqual([orders[0]!.id]);
    const after = await rowCounts(stack.orders.db);
    expect(after.orders - before.orders).toBe(1);
    expect(after.items - before.items).toBe(2);
  });

  it('of two racing placements with one key and different items, places one and refuses the other', async () => {
    const key = newKey();
    const before = await rowCounts(stack.orders.db);
    const deps = { ...runtime, catalog: togetherAfterLookUp(2) };
    const results = await Promise.allSettled([
      placeDirectly(deps, { userId: alice, items: [line(p(7))], idempotencyKey: key }, 'race-a'),
      placeDirectly(deps, { userId: alice, items: [line(p(8))], idempotencyKey: key }, 'race-b'),
    ]);
    const fulfilled = results.filter((r) => r.status === 'fulfilled');
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(1);
    expect((rejected[0] as PromiseRejectedResult).reason).toMatchObject({
      extensions: { code: 'BAD_USER_INPUT', field: 'input.idempotencyKey' },
    });
    expect(await ordersOfKey(key)).toEqual([(fulfilled[0] as PromiseFulfilledResult<{ id: string }>).value.id]);
    expect((await rowCounts(stack.orders.db)).orders - before.orders).toBe(1);
  });

  it('refuses the key with other items or for another customer, naming it, and writes nothing', async () => {
    const key = newKey();
    const first = await placed(ADMIN, { userId: alice, items: [line(p(9))], idempotencyKey: key });
    const before = await rowCounts(stack.orders.db);
    for (const items of [[line(p(9), 2)], [line(p(9)), line(p(10))], [line(p(10))]]) {
      const res = await place(customer(alice), { items, idempotencyKey: key });
      expect(res.data).toBeNull();
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.idempotencyKey' });
      expect(res.errors?.[0]?.message).toBe(
        `input.idempotencyKey: "${key}" was already used for a different order (other items or another customer); use a new key for a new order`,
      );
    }
    expect(await rowCounts(stack.orders.db)).toEqual(before);
    expect(await ordersOfKey(key)).toEqual([first.id]);
  });

  it('keeps keys per customer: one key from two customers places two orders', async () => {
    const key = newKey();
    const ofAlice = await placed(customer(alice), { items: [line(p(11))], idempotencyKey: key });
    const ofBob = await placed(customer(bob), { items: [line(p(11))], idempotencyKey: key });
    expect(ofBob.id).not.toBe(ofAlice.id);
    expect([ofAlice.user.id, ofBob.user.id]).toEqual([alice, bob]);
    expect(await ordersOfKey(key)).toEqual([ofAlice.id, ofBob.id].sort());
  });

  it("shares a customer's keys with an administrator placing for them", async () => {
    const key = newKey();
    const byAlice = await placed(customer(alice), { items: [line(p(12))], idempotencyKey: key });
    const byAdmin = await placed(ADMIN, { userId: alice, items: [line(p(12))], idempotencyKey: key });
    expect(byAdmin.id).toBe(byAlice.id);
    // For another user the same key is that user's own.
    const forBob = await placed(ADMIN, { userId: bob, items: [line(p(12))], idempotencyKey: key });
    expect(forBob.id).not.toBe(byAlice.id);
    expect(forBob.user.id).toBe(bob);
  });

  it.each([
    ['an empty key', ''],
    ['a key of 201 characters', 'k'.repeat(201)],
    ['a key with a tab', 'tab\tkey'],
    ['a key with a non-ASCII character', 'clé'],
  ])('refuses %s with BAD_USER_INPUT and writes nothing', async (_name, key) => {
    const before = await rowCounts(stack.orders.db);
    const res = await place(customer(alice), { items: [line(p(13))], idempotencyKey: key });
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.idempotencyKey' });
    expect(res.errors?.[0]?.message.startsWith('input.idempotencyKey: ')).toBe(true);
    expect(await rowCounts(stack.orders.db)).toEqual(before);
  });

  it('accepts a key of 200 printable characters', async () => {
    const key = `${randomUUID()} ~!@#$%^&*()`.padEnd(200, 'x');
    const first = await placed(customer(alice), { items: [line(p(13))], idempotencyKey: key });
    expect((await placed(customer(alice), { items: [line(p(13))], idempotencyKey: key })).id).toBe(first.id);
  });

  it('lets a key past its TTL be used again, for any order', async () => {
    const key = newKey();
    const first = await placed(customer(alice), { items: [line(p(14))], idempotencyKey: key });
    await stack.orders.db.query(
      `UPDATE order_idempotency_keys SET created_at = now() - interval '25 hours' WHERE user_id = $1 AND key = $2`,
      [alice, key],
    );
    expect(await findIdempotencyKey(stack.orders.db, alice, key, 24)).toBeUndefined();
    const second = await placed(customer(alice), { items: [line(p(15))], idempotencyKey: key });
    expect(second.id).not.toBe(first.id);
    expect(await ordersOfKey(key)).toEqual([second.id]);
    expect((await placed(customer(alice), { items: [line(p(15))], idempotencyKey: key })).id).toBe(second.id);
  });
});

describe('pruning idempotency keys', () => {
  /** Places orders with fresh keys and makes the first `expired` of them `hours` old. */
  async function keysAged(count: number, expired: number, hours: number): Promise<string[]> {
    const keys = Array.from({ length: count }, newKey);
    for (const key of keys) await placed(customer(bob), { items: [line(p(16))], idempotencyKey: key });
    await stack.orders.db.query(
      `UPDATE order_idempotency_keys SET created_at = now() - make_interval(hours => $2::int) WHERE key = ANY($1::text[])`,
      [keys.slice(0, expired), hours],
    );
    return keys;
  }

  const remaining = async (keys: string[]) =>
    (await stack.orders.db.query<{ key: string }>('SELECT key FROM order_idempotency_keys WHERE key = ANY($1::text[])', [keys]))
      .map((row) => row.key)
      .sort();

  it('deletes keys older than the TTL, in batches, and keeps the others and their orders', async () => {
    const keys = await keysAged(4, 3, 30);
    const before = await rowCounts(stack.orders.db);
    expect(await pruneIdempotencyKeys(stack.orders.db, 24, 2)).toBe(2);
    expect(await remaining(keys)).toHaveLength(2);
    const pruner = new IdempotencyKeyPruner({ db: stack.orders.db, ttlHours: 24, log, batchSize: 1 });
    expect(await pruner.pruneNow()).toBe(1);
    expect(await remaining(keys)).toEqual([keys[3]!]);
    expect(await pruneIdempotencyKeys(stack.orders.db, 24)).toBe(0);
    expect((await rowCounts(stack.orders.db)).orders).toBe(before.orders);
  });

  it('prunes on its own once started, until stopped', async () => {
    const keys = await keysAged(3, 2, 48);
    const pruner = new IdempotencyKeyPruner({ db: stack.orders.db, ttlHours: 24, log, intervalMs: 20 });
    pruner.start();
    try {
      const deadline = Date.now() + 5_000;
      while ((await remaining(keys)).length > 1 && Date.now() < deadline) await sleep(10);
    } finally {
      await pruner.stop();
    }
    expect(await remaining(keys)).toEqual([keys[2]!]);
  });
});

describe('cancelOrder of a cancelled order', () => {
  /** The outbox rows the cancellation of `id` writes: its event, notification and release job. */
  async function cancellationMessages(id: string): Promise<string[]> {
    const rows = await stack.orders.db.query<{ key: string }>('SELECT key FROM outbox WHERE key = ANY($1::text[]) ORDER BY id', [
      [`${id}-CANCELLED`, `order-${id}-CANCELLED`, `release-${id}`],
    ]);
    return rows.map((row) => row.key).sort();
  }

  it('answers the cancelled order again, with nothing written', async () => {
    const order = await placed(customer(alice), { items: [line(p(17))] });
    const first = await cancel(customer(alice), order.id, 'changed my mind');
    expect(first.errors).toBeUndefined();
    expect(first.data?.cancelOrder).toMatchObject({ id: order.id, status: 'CANCELLED', statusReason: 'changed my mind' });
    const before = await rowCounts(stack.orders.db);

    const again = await cancel(customer(alice), order.id, 'another reason');
    expect(again.errors).toBeUndefined();
    expect(again.data?.cancelOrder).toEqual(first.data?.cancelOrder);
    expect(again.data?.cancelOrder.statusHistory.map((change) => [change.status, change.reason])).toEqual([
      ['PENDING', null],
      ['CANCELLED', 'changed my mind'],
    ]);
    expect(await rowCounts(stack.orders.db)).toEqual(before);
    expect(await cancellationMessages(order.id)).toEqual(
      [`${order.id}-CANCELLED`, `order-${order.id}-CANCELLED`, `release-${order.id}`].sort(),
    );
  });

  it('answers both of two cancellations at once, with one history entry and one notification', async () => {
    const order = await placed(customer(alice), { items: [line(p(18))] });
    const answers = await Promise.all([cancel(customer(alice), order.id), cancel(ADMIN, order.id)]);
    for (const answer of answers) {
      expect(answer.errors).toBeUndefined();
      expect(answer.data?.cancelOrder.status).toBe('CANCELLED');
    }
    const [row] = await stack.orders.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM order_status_changes WHERE order_id = $1 AND status = 'CANCELLED'`,
      [order.id],
    );
    expect(row?.n).toBe(1);
    expect(await cancellationMessages(order.id)).toHaveLength(3);
  });

  it('still refuses other changes of a cancelled order, and other customers', async () => {
    const order = await placed(customer(alice), { items: [line(p(19))] });
    expect((await cancel(customer(alice), order.id)).errors).toBeUndefined();
    const ship = await graphql(stack.orders.url, UPDATE_STATUS, { id: order.id, status: 'SHIPPED' }, stack.orders.as(ADMIN));
    expect(ship.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION', status: 'CANCELLED', requested: 'SHIPPED' });
    const byBob = await cancel(customer(bob), order.id);
    expect(byBob.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
