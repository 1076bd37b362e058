import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import { COMMITTED_SUPERGRAPH, startRouter, startStack, type Stack } from './stack.js';

const shop = demoShop();
const QUERY = 'query UserName($id: ID!) { user(id: $id) { name } }';
const HASH = createHash('sha256').update(QUERY).digest('hex');
let stack: Stack;
let other: Awaited<ReturnType<typeof startRouter>>;

/** An automatic persisted query request: the hash, and the query text only when `withQuery`. */
async function apq(url: string, withQuery: boolean) {
  const res = await fetch(url, {
    method: 'POST',
    // The user's own token: `user(id)` is for that user and administrators.
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await stack.token(shop.users[3]!.id)}` },
    body: JSON.stringify({
      ...(withQuery ? { query: QUERY } : {}),
      variables: { id: shop.users[3]!.id },
      extensions: { persistedQuery: { version: 1, sha256Hash: HASH } },
    }),
  });
  return (await res.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] };
}

beforeAll(async () => {
  stack = await startStack();
  const urls = Object.fromEntries(Object.entries(stack.subgraphs).map(([name, s]) => [name, s.url]));
  other = await startRouter(COMMITTED_SUPERGRAPH, urls, undefined, { REDIS_URL: stack.redis.url, QUEUE_PREFIX: stack.redis.prefix });
});
afterAll(async () => {
  await other?.stop();
  await stack?.stop();
});

describe('automatic persisted queries, shared by router replicas through Redis', () => {
  it('misses, registers, then hits on another router', async () => {
    expect((await apq(stack.url, false)).errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    expect(await apq(stack.url, true)).toEqual({ data: { user: { name: shop.users[3]!.name } } });
    // Registered through the first router, known to the second.
    expect(await apq(other.url, false)).toEqual({ data: { user: { name: shop.users[3]!.name } } });
  });

  it('refuses a query whose hash does not match', async () => {
    const res = await fetch(stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }', extensions: { persistedQuery: { version: 1, sha256Hash: HASH } } }),
    });
    expect(res.status).toBe(400);
  });
});
