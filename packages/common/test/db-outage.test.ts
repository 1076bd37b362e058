import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  DatabaseUnavailableError,
  createLogger,
  createRedis,
  isDatabaseUnavailable,
  openDatabase,
  pauseWorkerWhileDatabaseDown,
  type Database,
} from '../src/index.js';
import { startPrivatePostgres, type PrivatePostgres } from '../src/test-servers.js';
import { createTestRedis, type TestRedis } from '../src/testing.js';

const log = createLogger('db-outage-test', 'silent');
let server: PrivatePostgres;
let db: Database;

beforeAll(async () => {
  server = await startPrivatePostgres();
  db = await openDatabase({ url: await server.createDatabase('outage'), name: 'outage', poolSize: 4, connectionTimeoutMs: 2_000 });
  await db.exec('CREATE TABLE items (id int PRIMARY KEY)');
});
afterAll(async () => {
  await db?.close();
  await server?.stop();
});

/** Rejects with what `promise` rejected with; fails the test if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

function expectUnavailable(error: unknown): void {
  expect(error).toBeInstanceOf(DatabaseUnavailableError);
  expect((error as DatabaseUnavailableError).database).toBe('outage');
  expect((error as DatabaseUnavailableError).clientMessage).toBe('The outage database is unavailable; retry in a few seconds');
}

/** Every client of the pool connected (and idle), so a restart cuts idle connections too. */
async function warmPool(): Promise<void> {
  await Promise.all([1, 2, 3, 4].map(() => db.query('SELECT pg_sleep(0.05)')));
}

describe('a database whose connections are cut (pg_terminate_backend)', () => {
  it('fails a transaction that was between statements, without an unhandled error, and serves the next one', async () => {
    await warmPool();
    let reached!: () => void;
    const inside = new Promise<void>((resolve) => (reached = resolve));
    const transaction = rejection(db.transaction(async (tx) => {
      await tx.query('INSERT INTO items (id) VALUES (1)');
      reached();
      // The connection dies here, while no statement is running: the client emits 'error'.
      await sleep(300);
      await tx.query('INSERT INTO items (id) VALUES (2)');
    }));
    await inside;
    expect(await server.terminateBackends('outage')).toBeGreaterThan(0);
    expectUnavailable(await transaction);
    // Nothing was committed, and the idle clients that were cut too are replaced.
    expect(await db.query('SELECT id FROM items')).toEqual([]);
    await db.transaction((tx) => tx.query('INSERT INTO items (id) VALUES (3)'));
    expect(await db.query('SELECT id FROM items')).toEqual([{ id: 3 }]);
  });

  it('survives connections cut again and again under concurrent statements and transactions', async () => {
    for (let round = 0; round < 15; round++) {
      const work = Array.from({ length: 8 }, (_, i) =>
        (i % 2 === 0
          ? db.query(`SELECT pg_sleep(${(i + 1) * 0.02})`)
          : db.transaction(async (tx) => {
              await tx.query('SELECT 1');
              await sleep(i * 10);
              await tx.query(`SELECT pg_sleep(${i * 0.01})`);
            })
        ).then(
          () => undefined,
          (error: unknown) => error,
        ),
      );
      await sleep(round * 7);
      await server.terminateBackends('outage');
      for (const outcome of await Promise.all(work)) if (outcome !== undefined) expect(outcome).toBeInstanceOf(DatabaseUnavailableError);
    }
    // Errors arriving after a statement ended are not thrown anywhere: give them a moment to surface as unhandled.
    await sleep(300);
    expect(await db.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('fails a statement that was running', async () => {
    const running = rejection(db.query('SELECT pg_sleep(5)'));
    const inTransaction = rejection(db.transaction((tx) => tx.query('SELECT pg_sleep(5)')));
    await sleep(200);
    await server.terminateBackends('outage');
    expectUnavailable(await running);
    expectUnavailable(await inTransaction);
    expect(await db.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('leaves errors of the statement itself as they are', async () => {
    const error = await rejection(db.transaction((tx) => tx.query('INSERT INTO items (id) VALUES (3)')));
    expect(error).not.toBeInstanceOf(DatabaseUnavailableError);
    expect((error as { code?: string }).code).toBe('23505');
    expect(await db.query('SELECT count(*)::int AS n FROM items')).toEqual([{ n: 1 }]);
  });
});

describe('a database that is killed and restarted', () => {
  it('fails queries, transactions and pings fast while it is down, then serves again without reopening', async () => {
    await warmPool();
    let reached!: () => void;
    const inside = new Promise<void>((resolve) => (reached = resolve));
    const open = rejection(db.transaction(async (tx) => {
      await tx.query('INSERT INTO items (id) VALUES (10)');
      reached();
      await sleep(500);
      await tx.query('INSERT INTO items (id) VALUES (11)');
    }));
    await inside;
    await server.kill();
    expectUnavailable(await open);

    const started = performance.now();
    expectUnavailable(await rejection(db.query('SELECT 1')));
    expectUnavailable(await rejection(db.transaction((tx) => tx.query('SELECT 1'))));
    expectUnavailable(await rejection(db.exec('SELECT 1')));
    expectUnavailable(await rejection(db.ping()));
    expect(performance.now() - started).toBeLessThan(2_000);

    await server.start();
    await db.ping();
    expect(await db.query('SELECT id FROM items ORDER BY id')).toEqual([{ id: 3 }]);
    await db.transaction((tx) => tx.query('INSERT INTO items (id) VALUES (12)'));
    expect(await db.query('SELECT id FROM items ORDER BY id')).toEqual([{ id: 3 }, { id: 12 }]);
  });
});

describe('isDatabaseUnavailable', () => {
  const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });

  it('knows connection failures of both drivers and of the socket', () => {
    for (const code of ['08006', '08001', '57P01', '57P02', '57P03', '53300', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']) {
      expect(isDatabaseUnavailable(coded(code)), code).toBe(true);
    }
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Connection terminated due to connection timeout'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isDatabaseUnavailable(new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')]))).toBe(true);
    expect(isDatabaseUnavailable(new Error('wrapped', { cause: coded('57P01') }))).toBe(true);
  });

  it('does not take statement errors for an outage', () => {
    for (const code of ['23505', '40001', '42P01', '57014']) expect(isDatabaseUnavailable(coded(code)), code).toBe(false);
    expect(isDatabaseUnavailable(new Error('boom'))).toBe(false);
    expect(isDatabaseUnavailable(undefined)).toBe(false);
  });
});

describe('pauseWorkerWhileDatabaseDown', () => {
  let redis: TestRedis;
  let connection: Redis;
  let producer: Redis;
  beforeAll(async () => {
    redis = await createTestRedis('db_outage');
    connection = createRedis(redis.url, log, { name: 'db-outage-worker', blocking: true });
    producer = createRedis(redis.url, log, { name: 'db-outage-producer', blocking: true });
  });
  afterAll(async () => {
    connection?.disconnect();
    producer?.disconnect();
    await redis?.cleanup();
  });

  it('stops taking jobs while the database is down and takes them again once it answers', async () => {
    const queue = new Queue('db-outage', { connection: producer, prefix: redis.prefix });
    const attempts: string[] = [];
    const worker = new Worker(
      'db-outage',
      async (job) => {
        attempts.push(job.id!);
        await db.query('SELECT 1');
      },
      { connection, prefix: redis.prefix, concurrency: 1 },
    );
    worker.on('error', () => undefined);
    const warnings: string[] = [];
    const infos: { msg: string; downMs?: number }[] = [];
    const watchLog = Object.assign(Object.create(log) as typeof log, {
      warn: (_details: unknown, msg: string) => warnings.push(msg),
      info: (details: { downMs?: number }, msg: string) => infos.push({ msg, downMs: details.downMs }),
    });
    const watch = pauseWorkerWhileDatabaseDown(worker, db, watchLog, { checkEveryMs: 100 });
    try {
      await worker.waitUntilReady();
      await server.kill();
      const jobOptions = { attempts: 5, backoff: { type: 'fixed', delay: 50 } };
      await queue.addBulk(['a', 'b', 'c', 'd'].map((id) => ({ name: 'job', data: {}, opts: { ...jobOptions, jobId: id } })));
      await expect.poll(() => watch.paused).toBe(true);
      await sleep(600);
      // The worker waited instead of trying every job: only the one that failed first and the one BullMQ had
      // already fetched with its failure (before the 'failed' event) lost an attempt.
      expect(attempts[0]).toBe('a');
      expect(attempts.length).toBeLessThanOrEqual(2);
      const failedWhileDown = [...attempts];
      expect(warnings).toEqual(['database unavailable: worker paused until it answers']);

      await server.start();
      await expect.poll(async () => (await queue.getJobCounts('completed')).completed, { timeout: 10_000 }).toBe(4);
      expect(watch.paused).toBe(false);
      expect(infos).toHaveLength(1);
      expect(infos[0]!.msg).toBe('database answers again: worker resumed');
      expect(infos[0]!.downMs).toBeGreaterThan(500);
      // Each job ran once more than it failed.
      expect([...attempts].sort()).toEqual([...failedWhileDown, 'a', 'b', 'c', 'd'].sort());
    } finally {
      watch.stop();
      await worker.close();
      await queue.close();
    }
  });
});
