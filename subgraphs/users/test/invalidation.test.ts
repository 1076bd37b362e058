import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { DEMO_CUSTOMER_PASSWORD, EntityInvalidator, createLogger, createRedis, demoShop } from '@shop/common';
import { generationChanges, graphql, startWithAndWithoutRuntime, type SubgraphPair } from '@shop/common/testing';
import { orderStatusJobId, welcomeJobId } from '../src/notifications/jobs.js';
import { notificationProcessor, startNotificationWorker } from '../src/notifications/worker.js';
import type { UsersRuntime } from '../src/runtime.js';
import { users } from '../src/server.js';
import { RecordingTransport, orderPayload, waitForState } from './support.js';

const log = createLogger('users-invalidation-test', 'silent');
const shop = demoShop();
let pair: SubgraphPair<UsersRuntime>;
let connection: Redis;

const CREATE = 'mutation($input: CreateUserInput!) { createUser(input: $input) { id email } }';
const queue = () => pair.subgraph.runtime!.queue;

beforeAll(async () => {
  // The same subgraph without its runtime has no Redis: it must not say that it keeps the contract. The tests
  // start the notification worker when they want notifications recorded.
  pair = await startWithAndWithoutRuntime(users, 'users-invalidation', { seed: true, env: { NOTIFICATION_WORKER_IN_PROCESS: 'false' } });
  connection = createRedis(pair.redis.url, log);
});
afterAll(async () => {
  connection?.disconnect();
  await pair?.close();
});

async function createUser(url: string, email: string) {
  return graphql<{ createUser: { id: string; email: string } }>(url, CREATE, { input: { email, name: 'Cache Tester' } });
}

describe('users subgraph: entity cache contract', () => {
  it('says so on its answers when its runtime has Redis, and not without one', async () => {
    const me = 'query { me { id } }';
    expect((await graphql(pair.subgraph.url, me)).headers.get('x-shop-entity-cache')).toBe('1');
    expect((await graphql(pair.bare.url, me)).headers.get('x-shop-entity-cache')).toBeNull();
  });

  it('increments the generation of an account it creates before answering, and nothing for one it refuses', async () => {
    const { result: res, changed } = await generationChanges(pair.redis, () => createUser(pair.subgraph.url, 'cache.one@example.com'));
    expect(res.errors).toBeUndefined();
    expect(changed).toEqual({ [`users:User:${res.data!.createUser.id}`]: 1 });

    const refused = await generationChanges(pair.redis, () => createUser(pair.subgraph.url, 'Cache.One@example.com'));
    expect(refused.result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(refused.changed).toEqual({});
  });

  it('increments nothing for a login, which changes no field', async () => {
    const customer = shop.users[2]!;
    const login = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }';
    const { result: res, changed } = await generationChanges(pair.redis, () =>
      graphql(pair.subgraph.url, login, { e: customer.email, p: DEMO_CUSTOMER_PASSWORD }),
    );
    expect(res.errors).toBeUndefined();
    expect(changed).toEqual({});
  });

  it('increments the recipient of every notification the worker records (User.notifications) before the job completes', async () => {
    const customer = shop.users[4]!;
    const orderId = randomUUID();
    const worker = await startNotificationWorker(pair.subgraph.db, { REDIS_URL: pair.redis.url, QUEUE_PREFIX: pair.redis.prefix }, log, {
      transport: new RecordingTransport(),
    });
    try {
      // What earlier tests left (their welcome jobs) is done first, so only this test's jobs move generations.
      await expect.poll(() => queue().getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 0, delayed: 0 });
      // A new account (its creation, then the welcome job its outbox relays) and an order's notification as orders sends it.
      const { result: userId, changed } = await generationChanges(pair.redis, async () => {
        const created = await createUser(pair.subgraph.url, 'cache.two@example.com');
        const id = created.data!.createUser.id;
        await queue().add('order-status', orderPayload(customer.id, orderId, 'CONFIRMED'), { jobId: orderStatusJobId(orderId, 'CONFIRMED') });
        await waitForState(queue(), welcomeJobId(id), 'completed');
        await waitForState(queue(), orderStatusJobId(orderId, 'CONFIRMED'), 'completed');
        return id;
      });
      expect(changed).toEqual({ [`users:User:${userId}`]: 2, [`users:User:${customer.id}`]: 1 });
    } finally {
      await worker.close();
    }
  });

  it('increments the recipient again for a job run again: the first run may have recorded and died before announcing', async () => {
    const customer = shop.users[5]!;
    const orderId = randomUUID();
    const invalidator = new EntityInvalidator('users', connection, pair.redis.prefix, log);
    const handle = notificationProcessor(pair.subgraph.db, new RecordingTransport(), 'Shop <shop@example.com>', invalidator);
    const job = { id: orderStatusJobId(orderId, 'SHIPPED'), name: 'order-status', data: orderPayload(customer.id, orderId, 'SHIPPED') } as Job;
    // The increment is written on `connection` and not waited for: a later command there (as BullMQ's completion of
    // the job) runs after it.
    const handled = async () => {
      const result = await handle(job);
      await connection.ping();
      return result;
    };
    for (const delivered of [true, false]) {
      const { result, changed } = await generationChanges(pair.redis, handled);
      expect(result).toEqual({ delivered });
      expect(changed).toEqual({ [`users:User:${customer.id}`]: 1 });
    }
  });

  it('without a runtime still creates accounts', async () => {
    const res = await createUser(pair.bare.url, 'cache.three@example.com');
    expect(res.data?.createUser.email).toBe('cache.three@example.com');
    expect(res.headers.get('x-shop-entity-cache')).toBeNull();
  });
});
