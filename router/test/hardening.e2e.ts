import { SignJWT } from 'jose';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CUSTOMER_PASSWORD, DEV_JWT_SECRET, demoShop } from '@shop/common';
import { graphql } from '@shop/common/testing';
import { COMMITTED_SUPERGRAPH, startRouter, startStack, type Stack } from './stack.js';

const shop = demoShop();
const alice = shop.users[1]!;
const carol = shop.users[3]!;
const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }';

let stack: Stack;
/** Two replicas with a low login throttle and the client address from X-Forwarded-For (each test its own address). */
let throttled: Awaited<ReturnType<typeof startRouter>>;
let replica: Awaited<ReturnType<typeof startRouter>>;
/** A replica with a rate limit of 4 requests per 3 s. */
let limited: Awaited<ReturnType<typeof startRouter>>;
const clients: Client[] = [];

beforeAll(async () => {
  stack = await startStack();
  const urls = Object.fromEntries(Object.entries(stack.subgraphs).map(([name, s]) => [name, s.url]));
  const shared = { REDIS_URL: stack.redis.url, QUEUE_PREFIX: stack.redis.prefix, TRUST_PROXY: 'true' };
  const throttle = { ...shared, RATE_LIMIT_MAX: '0', LOGIN_FAILURES_PER_ACCOUNT: '2', LOGIN_FAILURES_PER_ADDRESS: '3', LOGIN_BACKOFF_MS: '2500' };
  [throttled, replica, limited] = await Promise.all([
    startRouter(COMMITTED_SUPERGRAPH, urls, undefined, throttle),
    startRouter(COMMITTED_SUPERGRAPH, urls, undefined, throttle),
    startRouter(COMMITTED_SUPERGRAPH, urls, undefined, { ...shared, RATE_LIMIT_MAX: '4', RATE_LIMIT_WINDOW_MS: '3000' }),
  ]);
  // Four seeded subgraphs and three routers: slow on a busy machine.
}, 180_000);
afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await Promise.all([throttled?.stop(), replica?.stop(), limited?.stop()]);
  await stack?.stop();
});

/** A `ws` WebSocket whose upgrade request says it comes from `address` (through a trusted proxy). */
function fromAddress(address: string): typeof WebSocket {
  class FromAddress extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { headers: { 'x-forwarded-for': address } });
    }
  }
  return FromAddress as unknown as typeof WebSocket;
}

interface Outcome {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

function wsClient(url: string, options: { address?: string; authorization?: string; onClosed?: (code: number, reason: string) => void } = {}): Client {
  const client = createClient({
    url: url.replace('http', 'ws'),
    webSocketImpl: options.address ? fromAddress(options.address) : WebSocket,
    retryAttempts: 0,
    // One connection for the client's life (a lazy client closes between operations and opens anew).
    lazy: false,
    onNonLazyError: () => undefined,
    ...(options.authorization ? { connectionParams: { authorization: options.authorization } } : {}),
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string };
        options.onClosed?.(code, reason);
      },
    },
  });
  clients.push(client);
  return client;
}

/** One operation over graphql-ws: its result or the errors it was refused with (a closed socket is an error too). */
function run(client: Client, query: string, variables: Record<string, unknown> = {}, operationName?: string): Promise<Outcome> {
  return new Promise((resolve) => {
    let result: Outcome = {};
    client.subscribe(
      { query, variables, ...(operationName ? { operationName } : {}) },
      {
        next: (value) => (result = value as Outcome),
        error: (error) =>
          resolve({ errors: Array.isArray(error) ? (error as Outcome['errors']) : [{ message: String((error as { reason?: string }).reason ?? error) }] }),
        complete: () => resolve(result),
      },
    );
  });
}

const codes = (outcome: Outcome) => outcome.errors?.map((e) => e.extensions?.code);

describe('access tokens on long-lived graphql-ws connections', () => {
  it('runs operations until the token expires, then closes the socket with 4403, as HTTP refuses it with 401', async () => {
    const exp = Math.floor(Date.now() / 1000) + 3;
    const token = await new SignJWT({ role: 'CUSTOMER' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(alice.id)
      .setIssuer('shop-users')
      .setAudience('shop')
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(DEV_JWT_SECRET));
    let closed: { code: number; reason: string } | undefined;
    const client = wsClient(stack.url, { authorization: `Bearer ${token}`, onClosed: (code, reason) => (closed ??= { code, reason }) });
    expect((await run(client, '{ me { id } }')).data).toEqual({ me: { id: alice.id } });
    await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 300));
    expect(closed).toEqual({ code: 4403, reason: 'Forbidden: the access token has expired' });
    // The same token over HTTP, and a new connection with it: refused.
    const http = await graphql(stack.url, '{ me { id } }', undefined, { authorization: `Bearer ${token}` });
    expect(http.status).toBe(401);
    let refused: number | undefined;
    const again = wsClient(stack.url, { authorization: `Bearer ${token}`, onClosed: (code) => (refused ??= code) });
    expect((await run(again, '{ me { id } }')).data).toBeUndefined();
    expect(refused).toBe(4403);
  });
});

describe('client mistakes over graphql-ws and HTTP', () => {
  it('answers an unknown operationName with OPERATION_RESOLUTION_FAILURE: HTTP 400, a graphql-ws error, the socket kept', async () => {
    const http = await graphql(stack.url, 'query A { __typename }', undefined);
    expect(http.status).toBe(200);
    const res = await fetch(stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query A { __typename }', operationName: 'B' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Outcome).errors?.[0]?.extensions?.code).toBe('OPERATION_RESOLUTION_FAILURE');
    const client = wsClient(stack.url);
    expect(codes(await run(client, 'query A { __typename }', {}, 'B'))).toEqual(['OPERATION_RESOLUTION_FAILURE']);
    expect(codes(await run(client, 'query A { __typename } query C { __typename }'))).toEqual(['OPERATION_RESOLUTION_FAILURE']);
    expect((await run(client, 'query A { __typename } query C { __typename }', {}, 'C')).data).toEqual({ __typename: 'Query' });
  });
});

describe('failed logins, throttled per account and per address across replicas and transports', () => {
  const loginOver = async (url: string, address: string, email: string, password: string) => {
    const res = await graphql<{ login: { token: string } | null }>(url, LOGIN, { e: email, p: password }, { 'x-forwarded-for': address });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), codes: codes(res), token: res.data?.login?.token };
  };

  it('locks an account out after a few failures, over HTTP and graphql-ws, on every replica, with Retry-After', { timeout: 90_000 }, async () => {
    // Two free failures, from different addresses: the account is counted, not the address.
    expect((await loginOver(throttled.url, '10.0.1.1', alice.email, 'wrong')).codes).toEqual(['UNAUTHENTICATED']);
    expect((await loginOver(replica.url, '10.0.1.2', alice.email, 'wrong')).codes).toEqual(['UNAUTHENTICATED']);
    // The third failure (over graphql-ws) locks the account for 2.5 s.
    const ws = wsClient(throttled.url, { address: '10.0.1.3' });
    expect(codes(await run(ws, LOGIN, { e: alice.email.toUpperCase(), p: 'wrong' }))).toEqual(['UNAUTHENTICATED']);
    // Now even the right password is refused before it is checked, over HTTP on the other replica and over graphql-ws.
    const locked = await loginOver(replica.url, '10.0.1.4', alice.email, DEMO_CUSTOMER_PASSWORD);
    expect(locked).toMatchObject({ status: 429, codes: ['RATE_LIMITED'], token: undefined });
    expect(Number(locked.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(locked.retryAfter)).toBeLessThanOrEqual(3);
    const overWs = await run(ws, LOGIN, { e: alice.email, p: DEMO_CUSTOMER_PASSWORD });
    expect(codes(overWs)).toEqual(['RATE_LIMITED']);
    expect(overWs.errors?.[0]?.extensions?.retryAfter).toBeGreaterThanOrEqual(1);
    // Another account is not locked; after the lock-out the right password works again.
    expect((await loginOver(throttled.url, '10.0.1.5', carol.email, DEMO_CUSTOMER_PASSWORD)).token).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 2_600));
    expect((await loginOver(throttled.url, '10.0.1.6', alice.email, DEMO_CUSTOMER_PASSWORD)).token).toBeDefined();
  });

  it('refuses a deferred login, whose outcome it could not count', async () => {
    const res = await graphql(
      throttled.url,
      'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token ... @defer { user { id } } } }',
      { e: carol.email, p: 'wrong' },
      { 'x-forwarded-for': '10.0.4.1', accept: 'multipart/mixed; deferSpec=20220824, application/json' },
    );
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(['BAD_REQUEST']);
  });

  it('locks an address out after failures on several accounts', { timeout: 90_000 }, async () => {
    for (const [i, email] of ['nobody-1@shop.example', 'nobody-2@shop.example', 'nobody-3@shop.example', 'nobody-4@shop.example'].entries()) {
      expect((await loginOver(i % 2 ? replica.url : throttled.url, '10.0.2.1', email, 'guess')).codes).toEqual(['UNAUTHENTICATED']);
    }
    const locked = await loginOver(throttled.url, '10.0.2.1', carol.email, DEMO_CUSTOMER_PASSWORD);
    expect(locked).toMatchObject({ status: 429, codes: ['RATE_LIMITED'] });
    // Another address is not.
    expect((await loginOver(throttled.url, '10.0.2.2', carol.email, DEMO_CUSTOMER_PASSWORD)).token).toBeDefined();
  });
});

describe('the rate limit over graphql-ws', () => {
  it('counts connections and operations with HTTP requests: an operation over it gets RATE_LIMITED, a connection HTTP 429', async () => {
    const address = '10.0.3.1';
    const get = () => graphql(limited.url, '{ __typename }', undefined, { 'x-forwarded-for': address });
    expect((await get()).status).toBe(200);
    const client = wsClient(limited.url, { address });
    // The connection is the second request, this operation the third, the next the fourth; the fifth is over.
    expect((await run(client, '{ __typename }')).data).toEqual({ __typename: 'Query' });
    expect((await run(client, '{ __typename }')).data).toEqual({ __typename: 'Query' });
    const over = await run(client, '{ __typename }');
    expect(codes(over)).toEqual(['RATE_LIMITED']);
    expect((await get()).status).toBe(429);
    // A new connection's upgrade is refused with 429 and Retry-After.
    const upgrade = await new Promise<{ status: number; retryAfter: string | undefined }>((resolve) => {
      const socket = new (fromAddress(address))(limited.url.replace('http', 'ws'), 'graphql-transport-ws');
      socket.on('unexpected-response', (_req, res) => {
        resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
        socket.terminate();
      });
      socket.on('open', () => {
        resolve({ status: 101, retryAfter: undefined });
        socket.close();
      });
      socket.on('error', () => undefined);
    });
    expect(upgrade.status).toBe(429);
    expect(Number(upgrade.retryAfter)).toBeGreaterThanOrEqual(1);
    // Other clients are not affected.
    expect((await graphql(limited.url, '{ __typename }', undefined, { 'x-forwarded-for': '10.0.3.2' })).status).toBe(200);
  });
});
