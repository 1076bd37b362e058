import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EntityInvalidator, createLogger, entityGenerationKey } from '../src/index.js';
import { createTestRedis, type TestRedis } from '../src/testing.js';

describe('EntityInvalidator', () => {
  let testRedis: TestRedis;
  let redis: Redis;
  const commands: string[][] = [];

  beforeAll(async () => {
    testRedis = await createTestRedis('invalidator');
    redis = new Redis(testRedis.url);
    // Count the round trips (one pipeline each) and the keys each carried.
    const pipeline = redis.pipeline.bind(redis);
    redis.pipeline = ((...args: Parameters<Redis['pipeline']>) => {
      const p = pipeline(...args);
      const incr = p.incr.bind(p);
      const carried: string[] = [];
      commands.push(carried);
      p.incr = ((key: string) => {
        carried.push(key);
        return incr(key);
      }) as typeof p.incr;
      return p;
    }) as Redis['pipeline'];
  });
  afterAll(async () => {
    redis.disconnect();
    await testRedis.cleanup();
  });

  const generation = async (type: string, id: string) => Number((await redis.get(entityGenerationKey(testRedis.prefix, 'products', type, id))) ?? 0);

  it('grows each named generation once per call made alone, in lower case, under its subgraph', async () => {
    const invalidator = new EntityInvalidator('products', redis, testRedis.prefix, createLogger('test', 'silent'));
    await invalidator.invalidate([{ typename: 'Product', id: 'A1' }, { typename: 'Product', id: 'b2' }]);
    await invalidator.invalidate([{ typename: 'Product', id: 'a1' }]);
    expect(await generation('Product', 'a1')).toBe(2);
    expect(await generation('Product', 'b2')).toBe(1);
    expect(await redis.exists(`${testRedis.prefix}:entity-gen:products:Product:a1`)).toBe(1);
  });

  it('sends the calls made while a round trip is in flight together, and each resolves after its keys grew', async () => {
    const invalidator = new EntityInvalidator('products', redis, testRedis.prefix, createLogger('test', 'silent'));
    commands.length = 0;
    const ids = Array.from({ length: 20 }, (_, i) => `c${i}`);
    const seen: number[] = [];
    await Promise.all(
      ids.map((id) => invalidator.invalidate([{ typename: 'Product', id }, { typename: 'Product', id: 'shared' }]).then(async () => seen.push(await generation('Product', id)))),
    );
    expect(seen).toEqual(ids.map(() => 1));
    // The first call went alone; the 19 made meanwhile went in one more round trip, naming `shared` once.
    expect(commands.map((c) => c.length)).toEqual([2, 20]);
    expect(await generation('Product', 'shared')).toBe(2);
  });

  it('resolves (and logs) when Redis cannot be reached: the change is committed already', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    dead.on('error', () => undefined);
    const lines: string[] = [];
    const log = createLogger('test', 'warn', { write: (line: string) => lines.push(line) });
    await new EntityInvalidator('products', dead, testRedis.prefix, log).invalidate([{ typename: 'Product', id: 'x' }]);
    expect(lines.join('')).toMatch(/entity cache invalidation .* is failing/);
    dead.disconnect();
  });
});
