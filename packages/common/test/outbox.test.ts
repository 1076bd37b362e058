import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { OUTBOX_TABLE_SQL, OutboxRelay, createLogger, createRedis, enqueueOutbox } from '../src/index.js';
import { createTestDatabase, createTestRedis, type TestDatabase, type TestRedis } from '../src/testing.js';

const log = createLogger('outbox-test', 'silent');
let database: TestDatabase;
let redis: TestRedis;
let connection: Redis;
let queue: Queue;

beforeAll(async () => {
  database = await createTestDatabase('outbox');
  await database.db.exec(OUTBOX_TABLE_SQL);
  redis = await createTestRedis('outbox');
  connection = createRedis(redis.url, log);
  queue = new Queue('work', { connection, prefix: redis.prefix });
});
afterAll(async () => {
  await queue?.close();
  connection?.disconnect();
  await redis?.cleanup();
  await database?.drop();
});

describe('outbox relay', () => {
  it('keeps messages while Redis is unreachable and delivers each once when it is back', async () => {
    await database.db.transaction((tx) =>
      enqueueOutbox(tx, [
        { kind: 'job', queue: 'work', name: 'a', jobId: 'job-a', payload: { n: 1 } },
        { kind: 'job', queue: 'work', name: 'b', jobId: 'job-b', payload: { n: 2 } },
      ]),
    );

    // Nothing listens on port 1: every add fails.
    const deadConnection = createRedis('redis://127.0.0.1:1', log);
    const deadQueue = new Queue('work', { connection: deadConnection, prefix: redis.prefix });
    deadQueue.on('error', () => undefined);
    const failing = new OutboxRelay({ db: database.db, queues: { work: deadQueue }, log, sendTimeoutMs: 300 });
    expect(await failing.drain()).toBe(0);
    deadConnection.disconnect();
    const pending = await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE relayed_at IS NULL');
    expect(pending[0]?.n).toBe(2);

    const relay = new OutboxRelay({ db: database.db, queues: { work: queue }, log });
    expect(await relay.drain()).toBe(2);
    expect(await relay.drain()).toBe(0);
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.map((j) => [j.id, j.name, j.data]).sort()).toEqual([
      ['job-a', 'a', { n: 1 }],
      ['job-b', 'b', { n: 2 }],
    ]);
  });

  it('turns a message relayed twice (crash before marking) into one job', async () => {
    await database.db.transaction((tx) =>
      enqueueOutbox(tx, [{ kind: 'job', queue: 'work', name: 'c', jobId: 'job-c', payload: {} }]),
    );
    const relay = new OutboxRelay({ db: database.db, queues: { work: queue }, log });
    await relay.drain();
    // Simulate a crash after Redis accepted the job but before the row was marked.
    await database.db.query("UPDATE outbox SET relayed_at = NULL WHERE key = 'job-c'");
    await relay.drain();
    const jobs = (await queue.getJobs(['waiting'])).filter((j) => j.name === 'c');
    expect(jobs).toHaveLength(1);
  });

  it('publishes events to Redis pub/sub', async () => {
    const subscriber = createRedis(redis.url, log, { blocking: true });
    const publisher = createRedis(redis.url, log);
    const channel = `${redis.prefix}:events`;
    const received: string[] = [];
    await subscriber.subscribe(channel);
    subscriber.on('message', (_channel: string, message: string) => received.push(message));
    await database.db.transaction((tx) =>
      enqueueOutbox(tx, [{ kind: 'event', channel, name: 'changed', key: 'k1', payload: { status: 'X' } }]),
    );
    const relay = new OutboxRelay({ db: database.db, queues: {}, publisher, log });
    expect(await relay.drain()).toBe(1);
    await expect.poll(() => received).toEqual([JSON.stringify({ name: 'changed', key: 'k1', payload: { status: 'X' } })]);
    subscriber.disconnect();
    publisher.disconnect();
  });

  it('relays a batch of jobs for several queues and events, with the events in order and each job once', async () => {
    await database.db.exec('DELETE FROM outbox');
    const other = new Queue('other', { connection, prefix: redis.prefix });
    const subscriber = createRedis(redis.url, log, { blocking: true });
    const publisher = createRedis(redis.url, log);
    const channel = `${redis.prefix}:batch-events`;
    const received: string[] = [];
    await subscriber.subscribe(channel);
    subscriber.on('message', (_channel: string, message: string) => received.push((JSON.parse(message) as { key: string }).key));
    const keys = Array.from({ length: 30 }, (_, i) => `e${i}`);
    // Ids 96 to 129: in text order, 100 would come before 96.
    await database.db.query(`SELECT setval(pg_get_serial_sequence('outbox', 'id'), 95)`);
    await database.db.transaction((tx) =>
      enqueueOutbox(tx, [
        ...keys.map((key, i) => ({ kind: 'event' as const, channel, name: 'changed', key, payload: { i } })),
        { kind: 'job', queue: 'work', name: 'w1', jobId: 'batch-w1', payload: { n: 1 } },
        { kind: 'job', queue: 'other', name: 'o1', jobId: 'batch-o1', payload: { n: 2 } },
        { kind: 'job', queue: 'work', name: 'w2', jobId: 'batch-w2', payload: { n: 3 } },
        // Already added by an earlier relay that crashed before marking its rows: stays one job.
        { kind: 'job', queue: 'work', name: 'w1', jobId: 'batch-w1', payload: { n: 1 } },
      ]),
    );
    const relay = new OutboxRelay({ db: database.db, queues: { work: queue, other }, publisher, log });
    expect(await relay.drain()).toBe(34);
    await expect.poll(() => received.length).toBe(30);
    expect(received).toEqual(keys);
    const work = (await queue.getJobs(['waiting'])).filter((j) => j.id?.startsWith('batch-'));
    expect(work.map((j) => [j.id, j.data]).sort()).toEqual([
      ['batch-w1', { n: 1 }],
      ['batch-w2', { n: 3 }],
    ]);
    expect((await other.getJobs(['waiting'])).map((j) => [j.id, j.name, j.data])).toEqual([['batch-o1', 'o1', { n: 2 }]]);
    const pending = await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE relayed_at IS NULL');
    expect(pending[0]?.n).toBe(0);
    await other.close();
    subscriber.disconnect();
    publisher.disconnect();
  });

  it('leaves a batch unmarked when Redis refuses part of it, and relays it whole later', async () => {
    await database.db.exec('DELETE FROM outbox');
    await database.db.transaction((tx) =>
      enqueueOutbox(tx, [
        { kind: 'job', queue: 'work', name: 'p1', jobId: 'part-1', payload: {} },
        { kind: 'event', channel: `${redis.prefix}:part`, name: 'changed', key: 'part-e', payload: {} },
      ]),
    );
    // The job is accepted, the event is not: nothing can publish on a dead connection.
    const dead = createRedis('redis://127.0.0.1:1', log);
    dead.on('error', () => undefined);
    const failing = new OutboxRelay({ db: database.db, queues: { work: queue }, publisher: dead, log, sendTimeoutMs: 300 });
    expect(await failing.drain()).toBe(0);
    dead.disconnect();
    const publisher = createRedis(redis.url, log);
    const relay = new OutboxRelay({ db: database.db, queues: { work: queue }, publisher, log });
    expect(await relay.drain()).toBe(2);
    expect((await queue.getJobs(['waiting'])).filter((j) => j.id === 'part-1')).toHaveLength(1);
    publisher.disconnect();
  });

  it('relays the rows of commits that wake it in quick succession in one round, and a lone commit at once', async () => {
    await database.db.exec('DELETE FROM outbox');
    const message = (key: string) => ({ kind: 'job' as const, queue: 'work', name: 'burst', jobId: key, payload: {} });
    const relay = new OutboxRelay({ db: database.db, queues: { work: queue }, log, minIntervalMs: 300 });
    const relayedAt = async () =>
      database.db.query<{ key: string; at: string | null }>('SELECT key, relayed_at::text AS at FROM outbox ORDER BY id');
    try {
      relay.start();
      // The first (empty) round is over and its interval too: the next wake is a lone one.
      await new Promise((resolve) => setTimeout(resolve, 400));
      await database.db.transaction((tx) => enqueueOutbox(tx, [message('burst-1')]));
      const woken = performance.now();
      relay.wake();
      await expect.poll(async () => (await relayedAt())[0]?.at ?? null).not.toBeNull();
      expect(performance.now() - woken).toBeLessThan(250);
      // Two more commits right after: relayed together once the interval is over.
      for (const key of ['burst-2', 'burst-3']) {
        await database.db.transaction((tx) => enqueueOutbox(tx, [message(key)]));
        relay.wake();
      }
      await expect.poll(async () => (await relayedAt()).every((row) => row.at !== null), { timeout: 5_000 }).toBe(true);
      const rows = await relayedAt();
      // relayed_at is the relaying transaction's start: equal for rows relayed in one round.
      expect(rows[1]!.at).toBe(rows[2]!.at);
      expect(rows[1]!.at).not.toBe(rows[0]!.at);
    } finally {
      await relay.stop();
    }
  });

  it('on three replicas relaying side by side, sends each row once and marks it once', async () => {
    await database.db.exec('DELETE FROM outbox');
    const subscriber = createRedis(redis.url, log, { blocking: true });
    const channel = `${redis.prefix}:replica-events`;
    const received: string[] = [];
    await subscriber.subscribe(channel);
    subscriber.on('message', (_channel: string, message: string) => received.push((JSON.parse(message) as { key: string }).key));
    const keys = Array.from({ length: 300 }, (_, i) => `r${i}`);
    for (let i = 0; i < keys.length; i += 30) {
      await database.db.transaction((tx) =>
        enqueueOutbox(tx, keys.slice(i, i + 30).map((key) => ({ kind: 'event' as const, channel, name: 'changed', key, payload: {} }))),
      );
    }
    // A publisher each, as replicas have; small batches so that their rounds interleave.
    const publishers = [0, 1, 2].map(() => createRedis(redis.url, log));
    const relays = publishers.map((publisher) => new OutboxRelay({ db: database.db, queues: {}, publisher, log, batchSize: 10 }));
    try {
      const relayed = await Promise.all(relays.map((relay) => relay.drain()));
      expect(relayed.reduce((a, b) => a + b, 0)).toBe(keys.length);
      await expect.poll(() => received.length).toBe(keys.length);
      expect([...received].sort()).toEqual([...keys].sort());
      const rows = await database.db.query<{ attempts: number; n: number }>(
        'SELECT attempts, count(*)::int AS n FROM outbox WHERE relayed_at IS NOT NULL GROUP BY attempts',
      );
      expect(rows).toEqual([{ attempts: 1, n: keys.length }]);
    } finally {
      subscriber.disconnect();
      for (const publisher of publishers) publisher.disconnect();
    }
  });

  it('prunes rows relayed longer ago than the retention, and only those', async () => {
    await database.db.exec('DELETE FROM outbox');
    const message = (key: string) => ({ kind: 'event' as const, channel: 'c', name: 'n', key, payload: {} });
    await database.db.transaction((tx) => enqueueOutbox(tx, ['old', 'recent', 'pending'].map(message)));
    await database.db.exec(`UPDATE outbox SET relayed_at = now() - interval '8 days' WHERE key = 'old'`);
    await database.db.exec(`UPDATE outbox SET relayed_at = now() - interval '1 day' WHERE key = 'recent'`);
    await database.db.exec(`UPDATE outbox SET created_at = now() - interval '30 days' WHERE key = 'pending'`);

    const relay = new OutboxRelay({ db: database.db, queues: {}, log, retentionMs: 7 * 86_400_000 });
    expect(await relay.prune()).toBe(1);
    const left = await database.db.query<{ key: string }>('SELECT key FROM outbox ORDER BY key');
    // A message never relayed stays, however old.
    expect(left.map((r) => r.key)).toEqual(['pending', 'recent']);
  });
});

describe('an outbox row the relay cannot deliver', () => {
  it('is set aside with attempts and last_error, and the rows behind it are relayed', async () => {
    await database.db.exec('DELETE FROM outbox');
    await database.db.transaction((tx) =>
      enqueueOutbox(tx, [
        { kind: 'job', queue: 'retired-queue', name: 'x', jobId: 'job-lost', payload: {} },
        { kind: 'event', channel: 'no-publisher', name: 'e', key: 'k', payload: {} },
        { kind: 'job', queue: 'work', name: 'after', jobId: 'job-after', payload: { n: 3 } },
      ]),
    );
    const relay = new OutboxRelay({ db: database.db, queues: { work: queue }, log });
    expect(await relay.drain()).toBe(3);
    expect(await queue.getJob('job-after')).toMatchObject({ name: 'after', data: { n: 3 } });
    const rows = await database.db.query<{ key: string; relayed: boolean; failed: boolean; attempts: number; last_error: string | null }>(
      `SELECT key, relayed_at IS NOT NULL AS relayed, failed_at IS NOT NULL AS failed, attempts, last_error FROM outbox ORDER BY id`,
    );
    expect(rows).toEqual([
      { key: 'job-lost', relayed: false, failed: true, attempts: 1, last_error: expect.stringMatching(/targets unknown queue retired-queue/) },
      { key: 'k', relayed: false, failed: true, attempts: 1, last_error: expect.stringMatching(/is an event but the relay has no publisher/) },
      { key: 'job-after', relayed: true, failed: false, attempts: 1, last_error: null },
    ]);
    // Set aside for good: later rounds neither retry nor stall on them.
    await database.db.transaction((tx) => enqueueOutbox(tx, [{ kind: 'job', queue: 'work', name: 'later', jobId: 'job-later', payload: {} }]));
    expect(await relay.drain()).toBe(1);
    expect(await queue.getJob('job-later')).toBeDefined();
  });
});
