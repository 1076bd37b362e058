import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { EntityInvalidator, createLogger, createRedis, demoShop } from '@shop/common';
import { createTestRedis, generationChanges, graphql, startTestSubgraph, untilReady, type TestRedis, type TestSubgraph } from '@shop/common/testing';
import { inventory } from '../src/server.js';
import { reservationProcessor } from '../src/worker.js';

const shop = demoShop();
const product = (i: number) => shop.products[i]!.id;
const log = createLogger('reservations-test', 'silent');
let subgraph: TestSubgraph;
let redis: TestRedis;
let connection: Redis;
let reservations: Queue;
let results: Queue;

beforeAll(async () => {
  redis = await createTestRedis('reservations');
  subgraph = await startTestSubgraph(inventory, { seed: true, env: { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix } });
  connection = createRedis(redis.url, log);
  // What orders would add; nothing consumes the results here, so they can be inspected.
  reservations = new Queue('inventory-reservations', { connection, prefix: redis.prefix });
  results = new Queue('order-reservation-results', { connection, prefix: redis.prefix });
  await untilReady(subgraph);
});
afterAll(async () => {
  await reservations?.close();
  await results?.close();
  connection?.disconnect();
  await subgraph?.close();
  await redis?.cleanup();
});

async function setStock(productId: string, available: number): Promise<void> {
  await subgraph.db.query('UPDATE stock SET available = $2 WHERE product_id = $1', [productId, available]);
}

async function stockOf(productId: string): Promise<number> {
  const [row] = await subgraph.db.query<{ available: number }>('SELECT available FROM stock WHERE product_id = $1', [productId]);
  return row!.available;
}

/** Adds a job as orders' relay would (its own id) and waits until the worker is done with it. */
async function run(name: string, data: unknown, jobId = `${name}-${randomUUID()}`, attempts = 3): Promise<Job> {
  const job = await reservations.add(name, data, { jobId, attempts, backoff: { type: 'fixed', delay: 10 } });
  await expect.poll(async () => job.getState(), { timeout: 10_000 }).toMatch(/^(completed|failed)$/);
  return (await reservations.getJob(job.id!))!;
}

const reserve = (orderId: string, lines: { productId: string; quantity: number }[], jobId?: string) =>
  run('reserve', { orderId, lines }, jobId ?? `reserve-${orderId}`);

describe('stock reservations', () => {
  it('reserves every line, answers orders through the outbox, and shows in Product.stock', async () => {
    const [a, b] = [product(1), product(2)];
    await setStock(a, 10);
    await setStock(b, 4);
    const orderId = randomUUID();
    const job = await reserve(orderId, [
      { productId: b, quantity: 4 },
      { productId: a, quantity: 3 },
    ]);
    expect(job.returnvalue).toBe('reserved');
    expect([await stockOf(a), await stockOf(b)]).toEqual([7, 0]);
    const held = await subgraph.db.query('SELECT product_id AS "productId", quantity FROM reservations WHERE order_id = $1 ORDER BY quantity', [orderId]);
    expect(held).toEqual([
      { productId: a, quantity: 3 },
      { productId: b, quantity: 4 },
    ]);
    await expect.poll(async () => (await results.getJob(`result-${orderId}`))?.name).toBe('reserved');
    expect((await results.getJob(`result-${orderId}`))?.data).toEqual({ orderId });

    const res = await graphql<{ _entities: { stock: number; inStock: boolean }[] }>(
      subgraph.url,
      'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { stock inStock } } }',
      { r: [{ __typename: 'Product', id: a }, { __typename: 'Product', id: b }] },
    );
    expect(res.data?._entities).toEqual([
      { stock: 7, inStock: true },
      { stock: 0, inStock: false },
    ]);
  });

  it('reserves once when the same reserve job is delivered again', async () => {
    const p = product(3);
    await setStock(p, 10);
    const orderId = randomUUID();
    const lines = [{ productId: p, quantity: 4 }];
    expect((await reserve(orderId, lines)).returnvalue).toBe('reserved');
    expect((await reserve(orderId, lines, `redelivered-${orderId}`)).returnvalue).toBe('already decided');
    expect(await stockOf(p)).toBe(6);
    const outbox = await subgraph.db.query('SELECT 1 FROM outbox WHERE key = $1', [`result-${orderId}`]);
    expect(outbox).toHaveLength(1);
    const [held] = await subgraph.db.query<{ units: number }>('SELECT sum(quantity)::int AS units FROM reservations WHERE order_id = $1', [orderId]);
    expect(held?.units).toBe(4);
  });

  it('rejects the whole order when one line is short, naming that product, and takes nothing', async () => {
    const [plenty, short, none] = [product(4), product(5), product(6)];
    await setStock(plenty, 10);
    await setStock(short, 2);
    await setStock(none, 0);
    const orderId = randomUUID();
    const job = await reserve(orderId, [
      { productId: plenty, quantity: 5 },
      { productId: short, quantity: 3 },
      { productId: none, quantity: 1 },
    ]);
    expect(job.returnvalue).toBe('rejected');
    expect([await stockOf(plenty), await stockOf(short), await stockOf(none)]).toEqual([10, 2, 0]);
    expect(await subgraph.db.query('SELECT 1 FROM reservations WHERE order_id = $1', [orderId])).toEqual([]);
    await expect.poll(async () => (await results.getJob(`result-${orderId}`))?.name).toBe('rejected');
    const result = (await results.getJob(`result-${orderId}`))!.data as { reason: string; shortages: unknown[] };
    expect(result.shortages).toEqual(
      expect.arrayContaining([
        { productId: short, requested: 3, available: 2 },
        { productId: none, requested: 1, available: 0 },
      ]),
    );
    expect(result.shortages).toHaveLength(2);
    expect(result.reason).toContain(`product ${short} (3 requested, 2 available)`);
    expect(result.reason).not.toContain(plenty);
  });

  it('never oversells when reservations for one product run at once', async () => {
    const [p, q] = [product(7), product(8)];
    await setStock(p, 7);
    await setStock(q, 100);
    const orderIds = Array.from({ length: 24 }, () => randomUUID());
    // Lines in both orders of products, so lock ordering matters as well as the stock check.
    await Promise.all(
      orderIds.map((orderId, i) =>
        reservations.add(
          'reserve',
          { orderId, lines: i % 2 ? [{ productId: p, quantity: 1 }, { productId: q, quantity: 2 }] : [{ productId: q, quantity: 2 }, { productId: p, quantity: 1 }] },
          { jobId: `reserve-${orderId}`, attempts: 3 },
        ),
      ),
    );
    await expect
      .poll(async () => (await subgraph.db.query('SELECT 1 FROM reservation_outcomes WHERE order_id = ANY($1::uuid[])', [orderIds])).length, {
        timeout: 20_000,
      })
      .toBe(24);
    const outcomes = await subgraph.db.query<{ outcome: string; n: number }>(
      'SELECT outcome, count(*)::int AS n FROM reservation_outcomes WHERE order_id = ANY($1::uuid[]) GROUP BY outcome ORDER BY outcome',
      [orderIds],
    );
    expect(outcomes).toEqual([
      { outcome: 'rejected', n: 17 },
      { outcome: 'reserved', n: 7 },
    ]);
    expect([await stockOf(p), await stockOf(q)]).toEqual([0, 86]);
  });

  it('releases a reservation once, and a release before the reservation cancels it', async () => {
    const p = product(10);
    await setStock(p, 5);
    const orderId = randomUUID();
    await reserve(orderId, [{ productId: p, quantity: 5 }]);
    expect(await stockOf(p)).toBe(0);
    expect((await run('release', { orderId })).returnvalue).toBe('released 5 units');
    expect((await run('release', { orderId })).returnvalue).toBe('released 0 units');
    expect(await stockOf(p)).toBe(5);

    const cancelled = randomUUID();
    expect((await run('release', { orderId: cancelled })).returnvalue).toBe('released 0 units');
    expect((await reserve(cancelled, [{ productId: p, quantity: 1 }])).returnvalue).toBe('already decided');
    expect(await stockOf(p)).toBe(5);
    expect(await results.getJob(`result-${cancelled}`)).toBeUndefined();
  });

  it('wakes the outbox relay only for a decision it queued, not for a release or a repeated reservation', async () => {
    const p = product(9);
    await setStock(p, 5);
    let wakes = 0;
    const handle = reservationProcessor(subgraph.db, { wake: () => wakes++ }, new EntityInvalidator('inventory', undefined, redis.prefix, log));
    const orderId = randomUUID();
    const job = (name: string, data: unknown) => ({ name, data }) as Job;
    expect(await handle(job('reserve', { orderId, lines: [{ productId: p, quantity: 1 }] }))).toBe('reserved');
    expect(wakes).toBe(1);
    expect(await handle(job('reserve', { orderId, lines: [{ productId: p, quantity: 1 }] }))).toBe('already decided');
    expect(await handle(job('release', { orderId }))).toBe('released 1 units');
    expect(await handle(job('release', { orderId: randomUUID() }))).toBe('released 0 units');
    expect(wakes).toBe(1);
    expect(await handle(job('reserve', { orderId: randomUUID(), lines: [{ productId: p, quantity: 99 }] }))).toBe('rejected');
    expect(wakes).toBe(2);
  });

  it.each([
    ['a payload that is not an object', 'reserve', null],
    ['a malformed order id', 'reserve', { orderId: 'order-1', lines: [{ productId: product(1), quantity: 1 }] }],
    ['no lines', 'reserve', { orderId: randomUUID(), lines: [] }],
    ['a quantity of 0', 'reserve', { orderId: randomUUID(), lines: [{ productId: product(1), quantity: 0 }] }],
    ['a malformed product id', 'reserve', { orderId: randomUUID(), lines: [{ productId: 'p', quantity: 1 }] }],
    ['a product twice', 'reserve', { orderId: randomUUID(), lines: [{ productId: product(1), quantity: 1 }, { productId: product(1), quantity: 2 }] }],
    ['a numeric order id', 'release', { orderId: 42 }],
    ['an unknown job name', 'restock', { orderId: randomUUID() }],
  ])('fails a job with %s at once, without retries', async (_label, name, data) => {
    const job = await run(name, data, undefined, 5);
    expect(await job.getState()).toBe('failed');
    expect(job.attemptsMade).toBe(1);
  });
});

describe('stock reservations: entity generations', () => {
  /** What the router's entity cache must hear of: the products whose stock changed, once each. */
  const announced = (...productIds: string[]) => Object.fromEntries(productIds.map((id) => [`inventory:Product:${id}`, 1]));

  it('increments every product of a reservation before the job completes, and again for a repeated one', async () => {
    const [a, b] = [product(20), product(21)];
    await setStock(a, 10);
    await setStock(b, 10);
    const orderId = randomUUID();
    const lines = [
      { productId: b, quantity: 2 },
      { productId: a, quantity: 1 },
    ];
    const reserved = await generationChanges(redis, () => reserve(orderId, lines));
    expect(reserved.result.returnvalue).toBe('reserved');
    expect(reserved.changed).toEqual(announced(a, b));
    // Nothing changes now, but the run that reserved may have died before announcing it.
    const repeated = await generationChanges(redis, () => reserve(orderId, lines, `redelivered-${orderId}`));
    expect(repeated.result.returnvalue).toBe('already decided');
    expect(repeated.changed).toEqual(announced(a, b));
  });

  it('announces the stock change before it wakes the relay that sends the result', async () => {
    const p = product(26);
    await setStock(p, 5);
    const steps: string[] = [];
    const invalidator = new EntityInvalidator('inventory', connection, redis.prefix, log);
    const handle = reservationProcessor(
      subgraph.db,
      { wake: () => steps.push('wake') },
      {
        invalidate: async (refs) => {
          await invalidator.invalidate(refs);
          steps.push(`announced ${refs.map((r) => r.id).join()}`);
        },
      },
    );
    const orderId = randomUUID();
    expect(await handle({ name: 'reserve', data: { orderId, lines: [{ productId: p, quantity: 1 }] } } as Job)).toBe('reserved');
    expect(steps).toEqual([`announced ${p}`, 'wake']);
  });

  it('increments nothing for a rejected reservation: no stock changed', async () => {
    const [a, b] = [product(22), product(23)];
    await setStock(a, 10);
    await setStock(b, 0);
    const { result: job, changed } = await generationChanges(redis, () =>
      reserve(randomUUID(), [
        { productId: a, quantity: 1 },
        { productId: b, quantity: 1 },
      ]),
    );
    expect(job.returnvalue).toBe('rejected');
    expect(changed).toEqual({});
  });

  it('increments the products a release gives units back to, again for a repeated release, and none for nothing held', async () => {
    const [a, b] = [product(24), product(25)];
    await setStock(a, 10);
    await setStock(b, 10);
    const orderId = randomUUID();
    await reserve(orderId, [
      { productId: a, quantity: 3 },
      { productId: b, quantity: 4 },
    ]);
    const released = await generationChanges(redis, () => run('release', { orderId }));
    expect(released.result.returnvalue).toBe('released 7 units');
    expect(released.changed).toEqual(announced(a, b));
    const repeated = await generationChanges(redis, () => run('release', { orderId }, `again-release-${orderId}`));
    expect(repeated.result.returnvalue).toBe('released 0 units');
    expect(repeated.changed).toEqual(announced(a, b));
    expect([await stockOf(a), await stockOf(b)]).toEqual([10, 10]);

    const neverReserved = await generationChanges(redis, () => run('release', { orderId: randomUUID() }));
    expect(neverReserved.result.returnvalue).toBe('released 0 units');
    expect(neverReserved.changed).toEqual({});
  });
});
