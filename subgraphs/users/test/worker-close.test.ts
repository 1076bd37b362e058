import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, migrate } from '@shop/common';
import { createTestDatabase, type TestDatabase } from '@shop/common/testing';
import { startPrivateRedis, type PrivateRedis } from '@shop/common/test-servers';
import { startNotificationWorker } from '../src/notifications/worker.js';
import { users } from '../src/server.js';

const log = createLogger('worker-close-test', 'silent');
let redis: PrivateRedis;
let database: TestDatabase;

beforeAll(async () => {
  [redis, database] = await Promise.all([startPrivateRedis(), createTestDatabase('worker_close')]);
  await migrate(database.db, users.migrations);
});
afterAll(async () => {
  await redis?.stop();
  await database?.drop();
});

describe('notification worker stop', () => {
  it('does not wait for Redis that is gone (a SIGTERM then ends the process instead of hanging until SIGKILL)', { timeout: 30_000 }, async () => {
    const worker = await startNotificationWorker(database.db, { REDIS_URL: redis.url, QUEUE_PREFIX: 'close' }, log);
    await redis.kill();
    // The worker's connection notices the server is gone.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = performance.now();
    await worker.close();
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
