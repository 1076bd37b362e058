import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  OUTBOX_TABLE_SQL,
  OutboxReconciler,
  OutboxRelay,
  createLogger,
  createRedis,
  enqueueOutbox,
  processMetrics,
} from '../src/index.js';
import { createTestDatabase, createTestRedis, type TestDatabase, type TestRedis } from '../src/testing.js';

const log = createLogger('reconciler-test', 'silent');
let database: TestDatabase;
let redis: TestRedis;
let connection: Redis;
let queue: Queue;

beforeAll(async () => {
  database = await createTestDatabase('reconciler');
  await database.db.exec(OUTBOX_TABLE_SQL);
  redis = await createTestRedis('reconciler');
  connection = createRedis(redis.url, log);
  queue = new Queue('work', { connection, prefix: redis.prefix });
});
afterAll(async () => {
  await queue?.close();
  connection?.disconnect();
  await redis?.cleanup();
  await database?.drop();
});
beforeEach(async () => {
  await database.db.exec('DELETE FROM outbox');
  await queue.obliterate({ force: true });
});

function reconciler(ageMs = 1_000): OutboxReconciler {
  return new OutboxReconciler({ service: 'test', db: database.db, queues: { work: queue }, log, intervalMs: 60_000, ageMs });
}

/** Writes jobs to the outbox and relays them, then makes them look relayed `agoMs` ago. */
async function relayed(keys: string[], agoMs = 5_000): Promise<void> {
  await database.db.transaction((tx) =>
    enqueueOutbox(
      tx,
      keys.map((key) => ({ kind: 'job' as const, queue: 'work', name: 'do', jobId: key, payload: { key } })),
    ),
  );
  await new OutboxRelay({ db: database.db, queues: { work: queue }, log }).drain();
  await database.db.query(`UPDATE outbox SET relayed_at = now() - make_interval(secs => $1)`, [agoMs / 1000]);
}

async function rows(): Promise<Record<string, { confirmed: boolean; attempts: number }>> {
  const list = await database.db.query<{ key: string; confirmed: boolean; attempts: number }>(
    'SELECT key, confirmed_at IS NOT NULL AS confirmed, attempts FROM outbox ORDER BY id',
  );
  return Object.fromEntries(list.map((r) => [r.key, { confirmed: r.confirmed, attempts: r.attempts }]));
}

async function resentCount(): Promise<number> {
  const metric = await processMetrics.getSingleMetric('outbox_reconciler_resent_total')?.get();
  return metric?.values.filter((v) => v.labels.service === 'test').reduce((sum, v) => sum + v.value, 0) ?? 0;
}

/** Runs the queue's jobs to completion with a worker of the test's own. */
async function complete(count: number): Promise<void> {
  const workerConnection = createRedis(redis.url, log, { blocking: true });
  let done = 0;
  const finished = new Promise<void>((resolve) => {
    const worker = new Worker('work', async () => 'ok', { connection: workerConnection, prefix: redis.prefix });
    worker.on('completed', () => {
      if (++done === count) void worker.close().then(() => resolve());
    });
  });
  await finished;
  workerConnection.disconnect();
}

describe('outbox reconciler', () => {
  it('sends a relayed job again, under its id, when Redis lost it', async () => {
    await relayed(['lost-1', 'lost-2']);
    // What a Redis restart without persistence does to the queue.
    await queue.obliterate({ force: true });
    const before = await resentCount();

    const round = await reconciler().reconcile();

    expect(round).toEqual({ checked: 2, confirmed: 0, resent: 2 });
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.map((j) => [j.id, j.name, j.data]).sort()).toEqual([
      ['lost-1', 'do', { key: 'lost-1' }],
      ['lost-2', 'do', { key: 'lost-2' }],
    ]);
    expect(await resentCount()).toBe(before + 2);
    expect(await rows()).toEqual({ 'lost-1': { confirmed: false, attempts: 2 }, 'lost-2': { confirmed: false, attempts: 2 } });
  });

  it('confirms completed jobs and leaves waiting ones to be checked again after the age', async () => {
    await relayed(['done']);
    await complete(1);
    await relayed(['queued']);
    const r = reconciler(1_000);

    expect(await r.reconcile()).toEqual({ checked: 2, confirmed: 1, resent: 0 });
    expect(await rows()).toEqual({ done: { confirmed: true, attempts: 1 }, queued: { confirmed: false, attempts: 1 } });
    // The waiting job's next check is an age away: an immediate second round finds nothing due.
    expect(await r.reconcile()).toEqual({ checked: 0, confirmed: 0, resent: 0 });

    await complete(1);
    await database.db.query('UPDATE outbox SET check_after = now() WHERE confirmed_at IS NULL');
    expect(await r.reconcile()).toEqual({ checked: 1, confirmed: 1, resent: 0 });
    expect(await r.reconcile()).toEqual({ checked: 0, confirmed: 0, resent: 0 });
  });

  it('leaves jobs relayed less than the age ago alone', async () => {
    await relayed(['young'], 0);
    await queue.obliterate({ force: true });
    expect(await reconciler(60_000).reconcile()).toEqual({ checked: 0, confirmed: 0, resent: 0 });
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 0 });
  });

  it('leaves failed jobs in the dead letter rather than sending them again', async () => {
    await relayed(['broken']);
    const workerConnection = createRedis(redis.url, log, { blocking: true });
    await new Promise<void>((resolve) => {
      const worker = new Worker(
        'work',
        async () => {
          throw new Error('permanent');
        },
        { connection: workerConnection, prefix: redis.prefix },
      );
      worker.on('failed', () => void worker.close().then(() => resolve()));
    });
    workerConnection.disconnect();

    expect(await reconciler().reconcile()).toEqual({ checked: 1, confirmed: 0, resent: 0 });
    expect(await queue.getJobState('broken')).toBe('failed');
  });

  it('confirms events when they are relayed', async () => {
    await database.db.transaction((tx) =>
      enqueueOutbox(tx, [{ kind: 'event', channel: `${redis.prefix}:events`, name: 'e', key: 'event-1', payload: {} }]),
    );
    await new OutboxRelay({ db: database.db, queues: {}, publisher: connection, log }).drain();
    expect(await rows()).toEqual({ 'event-1': { confirmed: true, attempts: 1 } });
  });

  it('shares the work between replicas: each row is looked at once, a lost job added once', async () => {
    const keys = Array.from({ length: 60 }, (_, i) => `replica-${i}`);
    await relayed(keys);
    await queue.obliterate({ force: true });
    const replicas = [0, 1, 2].map(
      () =>
        new OutboxReconciler({ service: 'test', db: database.db, queues: { work: queue }, log, intervalMs: 60_000, ageMs: 1_000, batchSize: 7 }),
    );

    const rounds = await Promise.all(replicas.map((r) => r.reconcile()));

    expect(rounds.reduce((sum, r) => sum + r.checked, 0)).toBe(60);
    expect(rounds.reduce((sum, r) => sum + r.resent, 0)).toBe(60);
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 60 });
    expect(Object.values(await rows()).every((r) => r.attempts === 2)).toBe(true);
  });

  it('runs a round at start and then on its interval', async () => {
    await relayed(['periodic-1']);
    await queue.obliterate({ force: true });
    const r = new OutboxReconciler({ service: 'test', db: database.db, queues: { work: queue }, log, intervalMs: 200, ageMs: 500 });
    r.start();
    try {
      await expect.poll(() => queue.getJobState('periodic-1'), { timeout: 5_000 }).toBe('waiting');
      await complete(1);
      await expect.poll(async () => (await rows())['periodic-1']?.confirmed, { timeout: 5_000 }).toBe(true);
    } finally {
      await r.stop();
    }
  });
});
