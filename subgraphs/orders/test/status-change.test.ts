import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphQLError } from 'graphql';
import { demoShop, type Database } from '@shop/common';
import { ADMIN, countStatements, createTestRedis, customer, graphql, startTestSubgraph, type TestRedis, type TestSubgraph } from '@shop/common/testing';
import { ordersByIds } from '../src/db.js';
import { applyReservationResult, cancelOrder, type LifecycleDeps, type ReservationResult } from '../src/lifecycle.js';
import { statusEvent, type OrderStatusEvent } from '../src/messages.js';
import { orders, type OrdersRuntime } from '../src/server.js';

const shop = demoShop();
const inStatus = (status: string) => shop.orders.filter((o) => o.status === status);
const [shipped, cancelledByAdmin, cancelledByCustomer] = inStatus('CONFIRMED');
const [confirmedByInventory, rejectedByInventory, racedOnce, racedAlways, confirmedBySaga] = inStatus('PENDING');

let subgraph: TestSubgraph & { runtime: OrdersRuntime | undefined };
let redis: TestRedis;

beforeAll(async () => {
  redis = await createTestRedis('orders-status-change');
  subgraph = (await startTestSubgraph(orders, { seed: true, env: { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix } })) as typeof subgraph;
  // The outbox rows stay for the tests to read, and the relay's polls would add to the statements counted.
  await subgraph.runtime!.relay.stop();
});
afterAll(async () => {
  await subgraph?.close();
  await redis?.cleanup();
});

/** The lifecycle's dependencies on `db` (the subgraph's, or one that races it), with a relay nobody needs to wake. */
const depsOn = (db: Database): LifecycleDeps => ({
  db,
  prefix: redis.prefix,
  relay: { wake: () => undefined },
  invalidator: subgraph.runtime!.invalidator,
});

interface ChangeJson {
  id: string;
  status: string;
  statusReason: string | null;
  updatedAt: string;
}
const CHANGE_FIELDS = 'id status statusReason updatedAt';

/** The order as read back through the API, with its history. */
async function readBack(id: string) {
  const res = await graphql<{ order: ChangeJson & { statusHistory: { status: string; at: string; reason: string | null }[] } }>(
    subgraph.url,
    `query($id: ID!) { order(id: $id) { ${CHANGE_FIELDS} statusHistory { status at reason } } }`,
    { id },
    subgraph.as(ADMIN),
  );
  expect(res.errors).toBeUndefined();
  return res.data!.order;
}

/** The outbox rows of an order's status: its events and jobs, oldest first. */
async function outboxOf(key: string) {
  return subgraph.db.query<{ kind: string; name: string; key: string; payload: unknown }>(
    'SELECT kind, name, key, payload FROM outbox WHERE key = $1 ORDER BY id',
    [key],
  );
}

/**
 * Checks that the last change of the order is written consistently: the history entry, the order's updatedAt and
 * the event's `at` and `order.updatedAt` are the same time, to the character, and the event is the one the order
 * as read back gives. Returns that time.
 */
async function expectOneTime(id: string, status: string, reason: string | null): Promise<string> {
  const order = await readBack(id);
  const last = order.statusHistory.at(-1)!;
  expect(last).toEqual({ status, at: order.updatedAt, reason });
  const events = await outboxOf(`${id}-${status}`);
  expect(events.map((e) => [e.kind, e.name])).toEqual([['event', 'order.status']]);
  const payload = events[0]!.payload as OrderStatusEvent;
  expect(payload.at).toBe(order.updatedAt);
  expect(payload.order?.updatedAt).toBe(order.updatedAt);
  const [row] = await ordersByIds(subgraph.db, [id]);
  expect(payload).toEqual(statusEvent(redis.prefix, row!, row!.updatedAt, reason).payload);
  expect(await outboxOf(`order-${id}-${status}`)).toHaveLength(1);
  return order.updatedAt;
}

/**
 * `db`, with `interfere` run on the real one before each status change statement (another writer that gets in
 * between the lifecycle's read and its change). The texts of the statements it ran are in `statements`.
 */
function racing(db: Database, interfere: () => Promise<void>): Database & { statements: string[] } {
  const statements: string[] = [];
  return {
    kind: db.kind,
    name: db.name,
    statements,
    get statementCount() {
      return db.statementCount;
    },
    query: async <R extends object>(text: string, params?: readonly unknown[]) => {
      const change = /UPDATE orders/.test(text);
      if (change) await interfere();
      statements.push(change ? 'change' : /^\s*SELECT/.test(text) ? 'read' : text);
      return db.query<R>(text, params);
    },
    transaction: (fn) => db.transaction(fn),
    exec: (script) => db.exec(script),
    ping: () => db.ping(),
    close: () => db.close(),
  };
}

describe('an order status change', () => {
  it('ships an order in two statements, the read and the change, stamped with one time from the database', async () => {
    let res: Awaited<ReturnType<typeof graphql<{ updateOrderStatus: ChangeJson }>>> | undefined;
    const statements = await countStatements(subgraph.db, async () => {
      res = await graphql(
        subgraph.url,
        `mutation($id: ID!) { updateOrderStatus(id: $id, status: SHIPPED) { ${CHANGE_FIELDS} } }`,
        { id: shipped!.id },
        subgraph.as(ADMIN),
      );
    });
    expect(res?.errors).toBeUndefined();
    expect(statements).toBe(2);
    const at = await expectOneTime(shipped!.id, 'SHIPPED', null);
    expect(res?.data?.updateOrderStatus).toEqual({ id: shipped!.id, status: 'SHIPPED', statusReason: null, updatedAt: at });
    expect(Date.parse(at)).toBeGreaterThan(shipped!.createdAt.getTime());
  });

  it.each([
    ['an administrator', cancelledByAdmin!, ADMIN],
    ['its customer', cancelledByCustomer!, customer(cancelledByCustomer!.userId)],
  ])('is cancelled by %s in two statements: the order is read once, for the access check and the change', async (_who, { id }, identity) => {
    let res: Awaited<ReturnType<typeof graphql<{ cancelOrder: ChangeJson }>>> | undefined;
    const statements = await countStatements(subgraph.db, async () => {
      res = await graphql(
        subgraph.url,
        `mutation($id: ID!) { cancelOrder(id: $id, reason: "No longer needed") { ${CHANGE_FIELDS} } }`,
        { id },
        subgraph.as(identity),
      );
    });
    expect(res?.errors).toBeUndefined();
    expect(statements).toBe(2);
    const at = await expectOneTime(id, 'CANCELLED', 'No longer needed');
    expect(res?.data?.cancelOrder).toEqual({ id, status: 'CANCELLED', statusReason: 'No longer needed', updatedAt: at });
    expect((await outboxOf(`release-${id}`)).map((r) => [r.name, r.payload])).toEqual([['release', { orderId: id }]]);
  });

  it('applies reservation results in two statements each', async () => {
    const reserved: ReservationResult = { orderId: confirmedByInventory!.id, outcome: 'reserved', reason: null, shortages: [] };
    expect(await countStatements(subgraph.db, async () => expect(await applyReservationResult(depsOn(subgraph.db), reserved)).toBe('changed'))).toBe(2);
    await expectOneTime(confirmedByInventory!.id, 'CONFIRMED', null);

    const rejected: ReservationResult = { orderId: rejectedByInventory!.id, outcome: 'rejected', reason: 'No stock', shortages: [] };
    expect(await countStatements(subgraph.db, async () => expect(await applyReservationResult(depsOn(subgraph.db), rejected)).toBe('changed'))).toBe(2);
    await expectOneTime(rejectedByInventory!.id, 'REJECTED', 'No stock');
  });

  it('is announced to the entity cache after its commit and before the relay is woken', async () => {
    const order = confirmedBySaga!;
    const steps: string[] = [];
    const deps: LifecycleDeps = {
      ...depsOn(subgraph.db),
      relay: { wake: () => steps.push('wake') },
      invalidator: {
        invalidate: async (refs) => {
          const [row] = await ordersByIds(subgraph.db, [order.id]);
          await subgraph.runtime!.invalidator.invalidate(refs);
          steps.push(`announced ${refs.map((r) => `${r.typename}:${r.id}`).join()} at ${row?.status}`);
        },
      },
    };
    const result: ReservationResult = { orderId: order.id, outcome: 'reserved', reason: null, shortages: [] };
    expect(await applyReservationResult(deps, result)).toBe('changed');
    expect(steps).toEqual([`announced Order:${order.id},User:${order.userId} at CONFIRMED`, 'wake']);
  });

  it('that lost a race writes nothing, and is retried from the order as the winner left it', async () => {
    const { id } = racedOnce!;
    let raced = false;
    const db = racing(subgraph.db, async () => {
      if (raced) return;
      raced = true;
      // Inventory confirms the order between the cancellation's read and its change.
      await applyReservationResult(depsOn(subgraph.db), { orderId: id, outcome: 'reserved', reason: null, shortages: [] });
    });
    const cancelled = await cancelOrder(depsOn(db), id, 'Too slow');
    expect(cancelled).toMatchObject({ id, status: 'CANCELLED', statusReason: 'Too slow' });
    expect(db.statements).toEqual(['read', 'change', 'read', 'change']);
    const order = await readBack(id);
    expect(order.statusHistory.map((h) => h.status)).toEqual(['PENDING', 'CONFIRMED', 'CANCELLED']);
    expect(cancelled.updatedAt.toISOString()).toBe(await expectOneTime(id, 'CANCELLED', 'Too slow'));
    expect(await outboxOf(`release-${id}`)).toHaveLength(1);
  });

  it('that keeps losing races gives up with CONFLICT after five attempts, and writes nothing', async () => {
    const { id } = racedAlways!;
    const count = () =>
      subgraph.db.query<{ history: number; outbox: number }>(
        `SELECT (SELECT count(*)::int FROM order_status_changes WHERE order_id = $1) AS history,
                (SELECT count(*)::int FROM outbox WHERE payload->>'orderId' = $2) AS outbox`,
        [id, id],
      );
    const before = await count();
    // Another writer moves the order between each read and change (without history, which is not the point here).
    const db = racing(subgraph.db, async () => {
      await subgraph.db.query(
        `UPDATE orders SET status = CASE status WHEN 'PENDING' THEN 'CONFIRMED' ELSE 'PENDING' END WHERE id = $1`,
        [id],
      );
    });
    const error = await cancelOrder(depsOn(db), id, null).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GraphQLError);
    expect((error as GraphQLError).extensions).toMatchObject({ code: 'CONFLICT', id });
    expect(db.statements).toEqual(Array.from({ length: 5 }, () => ['read', 'change']).flat());
    expect(await count()).toEqual(before);
    expect((await readBack(id)).status).not.toBe('CANCELLED');
  });
});
