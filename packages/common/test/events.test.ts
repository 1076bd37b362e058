import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { RedisEvents, createLogger, createRedis, type PublishedEvent } from '../src/index.js';
import { createTestRedis, type TestRedis } from '../src/testing.js';

const log = createLogger('events-test', 'silent');
let redis: TestRedis;
let publisher: Redis;
let events: RedisEvents;

beforeAll(async () => {
  redis = await createTestRedis('events');
  publisher = createRedis(redis.url, log, { name: 'events-test-publisher' });
  events = new RedisEvents(createRedis(redis.url, log, { name: 'events-test-subscriber', blocking: true }), log);
});
afterAll(async () => {
  events?.close();
  publisher?.disconnect();
  await redis?.cleanup();
});

const event = (orderId: string, userId: string, n: number): PublishedEvent => ({
  name: 'order.status',
  key: `${orderId}-${n}`,
  payload: { orderId, userId, n },
});

describe('RedisEvents', () => {
  it('calls a listener with a filter only for events whose payload field has its value, and the others for all', async () => {
    const channel = `${redis.prefix}:filtered`;
    const got = { a: [] as string[], b: [] as string[], user: [] as string[], all: [] as string[] };
    const stops = await Promise.all([
      events.listen(channel, (e) => got.a.push(e.key), { field: 'orderId', value: 'a' }),
      events.listen(channel, (e) => got.b.push(e.key), { field: 'orderId', value: 'b' }),
      events.listen(channel, (e) => got.user.push(e.key), { field: 'userId', value: 'u1' }),
      events.listen(channel, (e) => got.all.push(e.key)),
    ]);
    expect(events.listenerCount).toBe(4);
    for (const e of [event('a', 'u1', 1), event('b', 'u2', 2), event('c', 'u1', 3), event('a', 'u2', 4)]) {
      await publisher.publish(channel, JSON.stringify(e));
    }
    await expect.poll(() => got.all.length).toBe(4);
    expect(got).toEqual({ a: ['a-1', 'a-4'], b: ['b-2'], user: ['a-1', 'c-3'], all: ['a-1', 'b-2', 'c-3', 'a-4'] });

    // The last listener of a value leaves; the channel stays subscribed for the others.
    stops[0]!();
    await publisher.publish(channel, JSON.stringify(event('a', 'u9', 5)));
    await expect.poll(() => got.all.length).toBe(5);
    expect(got.a).toEqual(['a-1', 'a-4']);
    expect(events.listenerCount).toBe(3);
    for (const stop of stops.slice(1)) stop();
    expect(events.listenerCount).toBe(0);
  });

  it('ignores a payload without the field, and a stop called twice removes nothing more', async () => {
    const channel = `${redis.prefix}:missing`;
    const got: string[] = [];
    const all: string[] = [];
    const stop = await events.listen(channel, (e) => got.push(e.key), { field: 'orderId', value: 'a' });
    const stopAll = await events.listen(channel, (e) => all.push(e.key));
    await publisher.publish(channel, JSON.stringify({ name: 'x', key: 'no-payload', payload: null }));
    await publisher.publish(channel, JSON.stringify({ name: 'x', key: 'number', payload: { orderId: 1 } }));
    await publisher.publish(channel, JSON.stringify(event('a', 'u', 1)));
    await expect.poll(() => all.length).toBe(3);
    expect(got).toEqual(['a-1']);
    stop();
    stop();
    expect(events.listenerCount).toBe(1);
    stopAll();
    expect(events.listenerCount).toBe(0);
  });
});
