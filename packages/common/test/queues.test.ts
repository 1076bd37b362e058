import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { closeWorker, createLogger, createRedis } from '../src/index.js';
import { createTestRedis, type TestRedis } from '../src/testing.js';

const log = createLogger('queues-test', 'silent');
let redis: TestRedis;
let producer: Redis;

beforeAll(async () => {
  redis = await createTestRedis('queues');
  producer = createRedis(redis.url, log, { name: 'queues-test-producer', blocking: true });
});
afterAll(async () => {
  producer?.disconnect();
  await redis?.cleanup();
});

/** A worker whose jobs each wait for the test to let them finish. */
function gatedWorker(queueName: string, connection: Redis) {
  const started: string[] = [];
  const waiters: (() => void)[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const worker = new Worker(
    queueName,
    async (job: Job) => {
      started.push(job.id!);
      for (const wake of waiters.splice(0)) wake();
      await gate;
      return { handled: job.data as unknown };
    },
    { connection, prefix: redis.prefix, concurrency: 1 },
  );
  worker.on('error', () => undefined);
  const firstStarted = () => (started.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)));
  return { worker, started, firstStarted, release: () => open() };
}

describe('closeWorker', () => {
  it('lets the job in progress finish and records its result, and takes no new job', async () => {
    const name = 'close-mid-job';
    const queue = new Queue(name, { connection: producer, prefix: redis.prefix });
    const connection = createRedis(redis.url, log, { blocking: true, name: 'queues-test-worker' });
    const { worker, started, firstStarted, release } = gatedWorker(name, connection);
    try {
      await worker.waitUntilReady();
      await queue.add('first', { n: 1 }, { jobId: 'first' });
      await firstStarted();
      await queue.add('second', { n: 2 }, { jobId: 'second' });

      let closed = false;
      const closing = closeWorker(worker, connection).then(() => (closed = true));
      // Closing waits for the running job...
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(closed).toBe(false);
      release();
      await closing;

      // ...which completed with its result stored; the job queued behind it was left for another worker.
      const first = await queue.getJob('first');
      expect(await first?.getState()).toBe('completed');
      expect(first?.returnvalue).toEqual({ handled: { n: 1 } });
      expect(await (await queue.getJob('second'))?.getState()).toBe('waiting');
      expect(started).toEqual(['first']);
    } finally {
      release();
      await worker.close(true);
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    }
  });

  it('gives up on a job that outlasts the grace period, leaving it to be taken over', async () => {
    const name = 'close-after-grace';
    const queue = new Queue(name, { connection: producer, prefix: redis.prefix });
    const connection = createRedis(redis.url, log, { blocking: true, name: 'queues-test-worker' });
    const { worker, firstStarted, release } = gatedWorker(name, connection);
    try {
      await worker.waitUntilReady();
      await queue.add('long', { n: 1 }, { jobId: 'long' });
      await firstStarted();
      // Resolves although the job's handler is still running; the job was not recorded as done.
      await closeWorker(worker, connection, 200);
      expect(await (await queue.getJob('long'))?.getState()).toBe('active');
    } finally {
      release();
      await worker.close(true);
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    }
  });

  it('does not wait for running jobs when Redis is gone (they could never be recorded)', async () => {
    const name = 'close-without-redis';
    const queue = new Queue(name, { connection: producer, prefix: redis.prefix });
    const connection = createRedis(redis.url, log, { blocking: true, name: 'queues-test-worker' });
    const { worker, firstStarted, release } = gatedWorker(name, connection);
    try {
      await worker.waitUntilReady();
      await queue.add('stuck', { n: 1 }, { jobId: 'stuck' });
      await firstStarted();
      const ended = new Promise((resolve) => connection.once('end', resolve));
      connection.disconnect();
      await ended;
      // Resolves although the job's handler is still blocked.
      await closeWorker(worker, connection);
      expect(connection.status).not.toBe('ready');
    } finally {
      release();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
