import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { demoShop, processMetrics, type Database } from '@shop/common';
import { ADMIN, graphql, identityHeaders } from '@shop/common/testing';
import { CANCEL_ORDER, openQueue, placeOrder, setStock, settled, startSagaStack, stockOf, type SagaStack } from './stack.js';

/**
 * Each kind of job the saga and notifications hand to Redis, lost with Redis's data after it was relayed (the
 * prefix's keys deleted, as a restart without persistence does), is sent again by its outbox's reconciler and takes
 * effect once. The reconcilers run every 200 ms and look at jobs 300 ms after their hand-over.
 */
const shop = demoShop();
let stack: SagaStack;

beforeAll(async () => {
  stack = await startSagaStack('reconcile', {
    env: { OUTBOX_RECONCILE_INTERVAL_MS: '200', OUTBOX_RECONCILE_AGE_MS: '300', NOTIFICATION_WORKER_IN_PROCESS: 'true' },
  });
});
afterAll(async () => {
  await stack?.close();
});

/** What a Redis restart without persistence does to this test's queues. */
async function loseRedisData(): Promise<void> {
  const redis = new Redis(stack.redis.url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${stack.redis.prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * Resolves once every job the outboxes handed over is confirmed, so the next loss is of the jobs a test names only
 * (a loss of earlier ones would be mended as well, on other paths: a result sent again releases a cancelled order).
 */
async function allConfirmed(): Promise<void> {
  for (const db of [stack.orders.db, stack.inventory!.db, stack.users.db]) {
    await expect
      .poll(async () => (await db.query("SELECT 1 FROM outbox WHERE kind = 'job' AND confirmed_at IS NULL")).length, {
        timeout: 15_000,
      })
      .toBe(0);
  }
}

/** Resolves once the outbox row of job `key` has been handed to Redis. */
async function relayedJob(db: Database, key: string): Promise<void> {
  await expect
    .poll(async () => (await db.query('SELECT 1 FROM outbox WHERE key = $1 AND relayed_at IS NOT NULL', [key])).length, {
      timeout: 10_000,
    })
    .toBe(1);
}

async function resent(service: string, job: string): Promise<number> {
  const metric = await processMetrics.getSingleMetric('outbox_reconciler_resent_total')?.get();
  return metric?.values.find((v) => v.labels.service === service && v.labels.job === job)?.value ?? 0;
}

/**
 * Runs fn with queue `name` paused, so its jobs wait in Redis and no consumer takes them; fn loses Redis's data,
 * the pause with it, and the consumers go on with whatever is sent again.
 */
async function withQueuePaused(name: string, fn: () => Promise<void>): Promise<void> {
  const { queue, close } = openQueue(stack, name);
  try {
    await queue.pause();
    await fn();
    expect(await queue.isPaused()).toBe(false);
  } finally {
    await close();
  }
}

async function place(productIndex: number, quantity: number): Promise<string> {
  const res = await placeOrder(stack.orders.url, shop.users[3]!.id, [{ productId: shop.products[productIndex]!.id, quantity }]);
  expect(res.errors).toBeUndefined();
  return res.data!.placeOrder.id;
}

describe('outbox reconciliation after Redis lost its data', () => {
  it('sends a lost reserve job again: the order is confirmed and its stock taken once', async () => {
    const product = shop.products[30]!;
    await setStock(stack.inventory!.db, product.id, 10);
    const before = await resent('orders', 'reserve');
    let id = '';
    await withQueuePaused('inventory-reservations', async () => {
      id = await place(30, 3);
      await relayedJob(stack.orders.db, `reserve-${id}`);
      await loseRedisData();
    });
    expect((await settled(stack.orders.db, id, 15_000)).status).toBe('CONFIRMED');
    expect(await stockOf(stack.inventory!.db, product.id)).toBe(7);
    expect(await resent('orders', 'reserve')).toBeGreaterThan(before);
  });

  it("sends a lost reservation result again: inventory's decision reaches the order", async () => {
    const product = shop.products[31]!;
    await setStock(stack.inventory!.db, product.id, 10);
    const before = await resent('inventory', 'reserved');
    let id = '';
    await withQueuePaused('order-reservation-results', async () => {
      id = await place(31, 4);
      await relayedJob(stack.inventory!.db, `result-${id}`);
      await loseRedisData();
    });
    expect((await settled(stack.orders.db, id, 15_000)).status).toBe('CONFIRMED');
    expect(await stockOf(stack.inventory!.db, product.id)).toBe(6);
    expect(await resent('inventory', 'reserved')).toBeGreaterThan(before);
  });

  it('sends a lost release again: a cancelled order gives its units back once', async () => {
    const product = shop.products[32]!;
    await setStock(stack.inventory!.db, product.id, 10);
    const id = await place(32, 5);
    expect((await settled(stack.orders.db, id)).status).toBe('CONFIRMED');
    expect(await stockOf(stack.inventory!.db, product.id)).toBe(5);
    await allConfirmed();
    const before = await resent('orders', 'release');
    await withQueuePaused('inventory-reservations', async () => {
      const res = await graphql(stack.orders.url, CANCEL_ORDER, { id, reason: null }, identityHeaders('orders', ADMIN));
      expect(res.errors).toBeUndefined();
      await relayedJob(stack.orders.db, `release-${id}`);
      await loseRedisData();
    });
    await expect.poll(() => stockOf(stack.inventory!.db, product.id), { timeout: 15_000 }).toBe(10);
    expect(await resent('orders', 'release')).toBeGreaterThan(before);
  });

  it('sends lost notifications again: each is recorded once', async () => {
    const product = shop.products[33]!;
    await setStock(stack.inventory!.db, product.id, 10);
    let id = '';
    await withQueuePaused('notifications', async () => {
      id = await place(33, 1);
      expect((await settled(stack.orders.db, id)).status).toBe('CONFIRMED');
      await relayedJob(stack.orders.db, `order-${id}-CONFIRMED`);
      await loseRedisData();
    });
    const jobIds = [`order-${id}-PENDING`, `order-${id}-CONFIRMED`];
    await expect
      .poll(
        async () =>
          (await stack.users.db.query<{ jobId: string }>('SELECT job_id AS "jobId" FROM notifications WHERE job_id = ANY($1) ORDER BY job_id', [jobIds])).map(
            (row) => row.jobId,
          ),
        { timeout: 15_000 },
      )
      .toEqual([...jobIds].sort());
  });

  it('sends a lost welcome notification again', async () => {
    const email = `reconcile-${Date.now()}@shop.example`;
    let userId = '';
    await withQueuePaused('notifications', async () => {
      const res = await graphql<{ createUser: { id: string } }>(
        stack.users.url,
        'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }',
        { input: { name: 'Reconciled Customer', email, password: 'a-long-enough-password' } },
      );
      expect(res.errors).toBeUndefined();
      userId = res.data!.createUser.id;
      await relayedJob(stack.users.db, `welcome-${userId}`);
      await loseRedisData();
    });
    await expect
      .poll(async () => (await stack.users.db.query('SELECT 1 FROM notifications WHERE job_id = $1', [`welcome-${userId}`])).length, {
        timeout: 15_000,
      })
      .toBe(1);
  });

  it('confirms the jobs that took effect and leaves nothing to send at rest', async () => {
    await allConfirmed();
  });
});
