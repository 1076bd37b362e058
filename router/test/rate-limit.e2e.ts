import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '@shop/common/testing';
import { COMMITTED_SUPERGRAPH, startRouter, startStack, type Stack } from './stack.js';

let stack: Stack;
let limited: Awaited<ReturnType<typeof startRouter>>;
let second: Awaited<ReturnType<typeof startRouter>>;

beforeAll(async () => {
  stack = await startStack();
  const urls = Object.fromEntries(Object.entries(stack.subgraphs).map(([name, s]) => [name, s.url]));
  const env = { REDIS_URL: stack.redis.url, QUEUE_PREFIX: stack.redis.prefix, RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '1500' };
  [limited, second] = await Promise.all([
    startRouter(COMMITTED_SUPERGRAPH, urls, undefined, env),
    startRouter(COMMITTED_SUPERGRAPH, urls, undefined, env),
  ]);
});
afterAll(async () => {
  await limited?.stop();
  await second?.stop();
  await stack?.stop();
});

describe('rate limiting per client, in Redis across router replicas', () => {
  it('answers 429 RATE_LIMITED with Retry-After past the limit, counting requests to every replica, and lets the client in again later', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await graphql(i % 2 ? second.url : limited.url, '{ __typename }')).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);

    const refused = await graphql(second.url, '{ __typename }');
    expect(refused.status).toBe(429);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect(refused.errors?.[0]?.message).toMatch(/at most 5 every 1.5 s/);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(2);

    await new Promise((r) => setTimeout(r, 1_600));
    expect((await graphql(limited.url, '{ __typename }')).status).toBe(200);
  });

  it('does not limit health probes', async () => {
    for (let i = 0; i < 10; i++) expect((await fetch(new URL('/health', limited.url))).status).toBe(200);
  });
});
