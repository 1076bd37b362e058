import type { GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import { HeaderMap } from '@apollo/server';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EntityInvalidator, createLogger, entityGenerationKey } from '@shop/common';
import { createTestRedis, type TestRedis } from '@shop/common/testing';
import { EntityCache, type EntityCacheConfig, type EntityFetchAnswer } from '../src/entity-cache.js';
import type { RouterContext } from '../src/context.js';

type ProcessOptions = GraphQLDataSourceProcessOptions<RouterContext>;
const QUERY = 'query($representations:[_Any!]!){_entities(representations:$representations){...on Product{name}}}';
const log = createLogger('test', 'silent');

interface Rep {
  __typename: string;
  id: string;
}

function fetchOf(ids: string[], options: { caller?: string; headers?: Record<string, string> } = {}): ProcessOptions {
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(options.headers ?? {})) headers.set(name, value);
  return {
    kind: 'incoming operation',
    request: { query: QUERY, variables: { representations: ids.map((id): Rep => ({ __typename: 'Product', id })) } },
    context: { requestId: 'r', log, identity: { sub: options.caller ?? 'admin-1', role: 'ADMIN' } },
    incomingRequestContext: { request: { http: { headers } } },
    document: undefined,
  } as unknown as ProcessOptions;
}

/** A subgraph that records what it was asked and names each entity after its id and the current version. */
function subgraph() {
  const asked: string[][] = [];
  const state = { version: 1, announced: true as boolean | undefined, fail: undefined as ((ids: string[]) => GatewayGraphQLResponse) | undefined };
  const send = async (options: ProcessOptions): Promise<EntityFetchAnswer> => {
    const ids = (options.request.variables!.representations as Rep[]).map((r) => r.id);
    asked.push(ids);
    const response = state.fail?.(ids) ?? { data: { _entities: ids.map((id) => ({ name: `${id} v${state.version}` })) } };
    return { response, announced: state.announced };
  };
  return { asked, state, send };
}

const names = (response: GatewayGraphQLResponse) => (response.data?._entities as ({ name: string } | null)[]).map((e) => e?.name ?? null);

describe('EntityCache', () => {
  let testRedis: TestRedis;
  let redis: Redis;
  let invalidator: EntityInvalidator;
  const config: EntityCacheConfig = { enabled: true, ttlMs: 60_000, maxEntries: 1_000, redisTimeoutMs: 500 };

  beforeAll(async () => {
    testRedis = await createTestRedis('entity-cache');
    redis = new Redis(testRedis.url);
    invalidator = new EntityInvalidator('products', redis, testRedis.prefix, log);
  });
  afterAll(async () => {
    redis.disconnect();
    await testRedis.cleanup();
  });
  beforeEach(async () => {
    await redis.del(`${testRedis.prefix}:entity-gen:epoch`);
  });

  /** A cache that has seen one announcing answer and has an epoch, as after a router's first requests. */
  async function warmCache(sub: ReturnType<typeof subgraph>, cacheConfig: EntityCacheConfig = config, now?: () => number) {
    const cache = new EntityCache(redis, testRedis.prefix, cacheConfig, log, {}, now);
    await cache.process('products', fetchOf(['warm']), sub.send);
    await cache.process('products', fetchOf(['warm']), sub.send);
    await new Promise((r) => setTimeout(r, 20));
    sub.asked.length = 0;
    return cache;
  }

  it('answers entities from memory until a committed change increments their generation', async () => {
    const sub = subgraph();
    const cache = await warmCache(sub);
    expect(names(await cache.process('products', fetchOf(['p1', 'p2']), sub.send))).toEqual(['p1 v1', 'p2 v1']);
    expect(names(await cache.process('products', fetchOf(['p1', 'p2']), sub.send))).toEqual(['p1 v1', 'p2 v1']);
    expect(sub.asked).toEqual([['p1', 'p2']]);

    sub.state.version = 2;
    await invalidator.invalidate([{ typename: 'Product', id: 'p2' }]);
    // p1 still from memory, p2 asked again: only the changed entity goes to the subgraph, in its place in the answer.
    expect(names(await cache.process('products', fetchOf(['p1', 'p2', 'p3']), sub.send))).toEqual(['p1 v1', 'p2 v2', 'p3 v2']);
    expect(sub.asked).toEqual([['p1', 'p2'], ['p2', 'p3']]);
    expect(await redis.get(entityGenerationKey(testRedis.prefix, 'products', 'Product', 'p2'))).toBe('1');
  });

  it('caches nothing of a subgraph that does not announce the contract, and stops using what it had when it stops', async () => {
    const sub = subgraph();
    sub.state.announced = false;
    const cache = new EntityCache(redis, testRedis.prefix, config, log);
    for (let i = 0; i < 3; i++) await cache.process('products', fetchOf(['p1']), sub.send);
    expect(sub.asked).toHaveLength(3);
    expect(cache.size).toBe(0);

    sub.state.announced = true;
    const warm = await warmCache(sub);
    await warm.process('products', fetchOf(['p1']), sub.send);
    sub.state.announced = false;
    await warm.process('products', fetchOf(['p2']), sub.send);
    await warm.process('products', fetchOf(['p1']), sub.send);
    // p1 went out again: the first answer without the header turned lookups off.
    expect(sub.asked).toEqual([['p1'], ['p2'], ['p1']]);
  });

  it('keeps callers apart, and a client asking for no-cache gets a fresh answer without the cache', async () => {
    const sub = subgraph();
    const cache = await warmCache(sub);
    await cache.process('products', fetchOf(['p1'], { caller: 'a' }), sub.send);
    await cache.process('products', fetchOf(['p1'], { caller: 'b' }), sub.send);
    await cache.process('products', fetchOf(['p1'], { caller: 'a' }), sub.send);
    expect(sub.asked).toEqual([['p1'], ['p1']]);

    sub.state.version = 2; // changed without an invalidation: only no-cache sees it
    expect(names(await cache.process('products', fetchOf(['p1'], { caller: 'a' }), sub.send))).toEqual(['p1 v1']);
    expect(names(await cache.process('products', fetchOf(['p1'], { caller: 'a', headers: { 'cache-control': 'no-cache' } }), sub.send))).toEqual(['p1 v2']);
    expect(sub.asked).toHaveLength(3);
    // Nothing was read or stored for it (the cache stays as the generations say).
    expect(names(await cache.process('products', fetchOf(['p1'], { caller: 'a' }), sub.send))).toEqual(['p1 v1']);
    expect(sub.asked).toHaveLength(3);
  });

  it('keeps no entity the subgraph answered with an error, and puts partial errors back at their own places', async () => {
    const sub = subgraph();
    const cache = await warmCache(sub);
    await cache.process('products', fetchOf(['p1']), sub.send);
    sub.state.fail = (ids) => ({
      data: { _entities: ids.map((id) => (id === 'p3' ? null : { name: `${id} v1` })) },
      errors: [{ message: 'p3 failed', path: ['_entities', ids.indexOf('p3'), 'name'] }],
    });
    const answer = await cache.process('products', fetchOf(['p1', 'p2', 'p3']), sub.send);
    expect(names(answer)).toEqual(['p1 v1', 'p2 v1', null]);
    expect(answer.errors).toEqual([{ message: 'p3 failed', path: ['_entities', 2, 'name'] }]);
    sub.state.fail = undefined;
    await cache.process('products', fetchOf(['p1', 'p2', 'p3']), sub.send);
    // p2 was kept, p3 (answered with an error) was not.
    expect(sub.asked).toEqual([['p1'], ['p2', 'p3'], ['p3']]);
  });

  it('serves what it has when the subgraph is down, with the errors on the missing entities only', async () => {
    const sub = subgraph();
    const cache = await warmCache(sub);
    await cache.process('products', fetchOf(['p1']), sub.send);
    sub.state.fail = (ids) => ({ errors: ids.map((_, i) => ({ message: 'down', path: ['_entities', i], extensions: { code: 'SUBGRAPH_UNAVAILABLE' } })) });
    sub.state.announced = undefined;
    const answer = await cache.process('products', fetchOf(['p2', 'p1']), sub.send);
    expect(names(answer)).toEqual([null, 'p1 v1']);
    expect(answer.errors?.map((e) => e.path)).toEqual([['_entities', 0]]);
  });

  it('forgets everything read before Redis lost its epoch (restarted empty or flushed), and what outlived its TTL', async () => {
    const sub = subgraph();
    let clock = 1_000_000;
    const cache = await warmCache(sub, { ...config, ttlMs: 1_000 }, () => clock);
    await cache.process('products', fetchOf(['p1']), sub.send);
    await cache.process('products', fetchOf(['p1']), sub.send);
    expect(sub.asked).toHaveLength(1);
    clock += 1_001;
    await cache.process('products', fetchOf(['p1']), sub.send);
    expect(sub.asked).toHaveLength(2);

    await redis.del(`${testRedis.prefix}:entity-gen:epoch`);
    await cache.process('products', fetchOf(['p1']), sub.send); // no epoch: uncached, and one is started
    await new Promise((r) => setTimeout(r, 20));
    await cache.process('products', fetchOf(['p1']), sub.send); // a new epoch: the old entry does not count
    await cache.process('products', fetchOf(['p1']), sub.send);
    expect(sub.asked).toHaveLength(4);
  });

  it('fetches as if there were no cache when Redis cannot be reached', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    dead.on('error', () => undefined);
    const sub = subgraph();
    const cache = new EntityCache(dead, testRedis.prefix, config, log);
    for (let i = 0; i < 3; i++) expect(names(await cache.process('products', fetchOf(['p1']), sub.send))).toEqual(['p1 v1']);
    expect(sub.asked).toHaveLength(3);
    dead.disconnect();
  });

  it('drops the oldest entries beyond its size', async () => {
    const sub = subgraph();
    const cache = await warmCache(sub, { ...config, maxEntries: 3 });
    await cache.process('products', fetchOf(['p1', 'p2', 'p3', 'p4']), sub.send);
    expect(cache.size).toBe(3);
    await cache.process('products', fetchOf(['p4', 'p1']), sub.send);
    expect(sub.asked).toEqual([['p1', 'p2', 'p3', 'p4'], ['p1']]);
  });
});
