import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEMO_ADMIN,
  DEMO_CUSTOMER_PASSWORD,
  DEV_IDENTITY_SECRET,
  DEV_JWT_SECRET,
  IDENTITY_HEADER,
  demoShop,
  signIdentity,
} from '@shop/common';
import { createTestRedis, graphql, startTestSubgraph, type TestRedis, type TestSubgraph } from '@shop/common/testing';
import { users } from '@shop/users';
import { COMMITTED_SUPERGRAPH, login, startRouter, startStack, type Stack } from './stack.js';

const shop = demoShop();
const alice = shop.users[1]!;
const bob = shop.users[2]!;
/** Demo orders of alice, and one CONFIRMED (cancellable) one among them when there is one. */
const aliceOrders = shop.orders.filter((o) => o.userId === alice.id);
const aliceOrder = aliceOrders[0]!;
const product = shop.products.find((p) => p.stock > 100)!;

const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token expiresAt user { id email role } } }';
const ORDER = 'query($id: ID!) { order(id: $id) { id user { id email } } }';
const PLACE = 'mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status user { id } } }';

let stack: Stack;
const clients: Client[] = [];
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const codes = (res: { errors?: { extensions?: Record<string, unknown> }[] }) => res.errors?.map((e) => e.extensions?.code);
/** Subgraph fetches the router has made so far, from its metrics (background work in the subgraphs does not count). */
async function subgraphFetches(): Promise<number> {
  const text = await (await fetch(stack.metricsUrl)).text();
  return [...text.matchAll(/^shop_router_subgraph_fetch_duration_seconds_count\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await stack?.stop();
});

describe('login and me through the router', () => {
  it('logs a customer in and answers me with them', async () => {
    const res = await graphql<{ login: { token: string; expiresAt: string; user: { id: string; email: string; role: string } } }>(
      stack.url,
      LOGIN,
      { e: alice.email, p: DEMO_CUSTOMER_PASSWORD },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.login.user).toEqual({ id: alice.id, email: alice.email, role: 'CUSTOMER' });
    const me = await graphql(stack.url, '{ me { id name email role } }', undefined, bearer(res.data!.login.token));
    expect(me.data).toEqual({ me: { id: alice.id, name: alice.name, email: alice.email, role: 'CUSTOMER' } });
  });

  it('refuses a wrong password with UNAUTHENTICATED', async () => {
    const res = await graphql(stack.url, LOGIN, { e: alice.email, p: 'customer-demo-passwor' });
    expect(res.errors?.[0]).toMatchObject({ message: 'Email or password is incorrect.', extensions: { code: 'UNAUTHENTICATED' } });
  });

  it('answers me with null and keeps product reads open for an anonymous caller', async () => {
    const res = await graphql<{ me: null; products: { edges: unknown[] } }>(stack.url, '{ me { id } products(first: 2) { edges { node { name stock } } } }');
    expect(res.errors).toBeUndefined();
    expect(res.data?.me).toBeNull();
    expect(res.data?.products.edges).toHaveLength(2);
  });
});

describe('invalid access tokens', () => {
  const sign = (claims: Record<string, unknown>, secret = DEV_JWT_SECRET, exp: number | string = '1h') =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(alice.id)
      .setIssuer('shop-users')
      .setAudience('shop')
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(secret));

  it.each([
    ['garbage', async () => 'Bearer not-a-jwt'],
    ['no Bearer scheme', async () => `Token ${await sign({ role: 'CUSTOMER' })}`],
    ['expired', async () => `Bearer ${await sign({ role: 'CUSTOMER' }, DEV_JWT_SECRET, Math.floor(Date.now() / 1000) - 10)}`],
    ['signed with another secret', async () => `Bearer ${await sign({ role: 'ADMIN' }, 'another-secret-another-secret-another')}`],
    ['claiming the SERVICE role', async () => `Bearer ${await sign({ role: 'SERVICE' })}`],
  ])('refuses a token that is %s with HTTP 401 UNAUTHENTICATED, calling no subgraph', async (_case, authorization) => {
    const before = await subgraphFetches();
    const res = await graphql(stack.url, '{ me { id } }', undefined, { authorization: await authorization() });
    expect(res.status).toBe(401);
    expect(res.errors?.[0]).toMatchObject({
      message: 'The access token is invalid or has expired; log in again.',
      extensions: { code: 'UNAUTHENTICATED' },
    });
    expect(await subgraphFetches()).toBe(before);
  });

  it('ignores an identity header a client sends to the router', async () => {
    const forged = { [IDENTITY_HEADER]: signIdentity({ sub: DEMO_ADMIN.id, role: 'ADMIN' }, 'orders', 'guessed-secret') };
    const res = await graphql(stack.url, ORDER, { id: aliceOrder.id }, forged);
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('rules through the router', () => {
  it('refuses anonymous callers with UNAUTHENTICATED', async () => {
    const cases: [string, Record<string, unknown>][] = [
      [ORDER, { id: aliceOrder.id }],
      ['{ orders(first: 1) { edges { node { id } } } }', {}],
      ['query($id: ID!) { user(id: $id) { name } }', { id: alice.id }],
      ['{ users(first: 1) { edges { node { id } } } }', {}],
      [PLACE, { input: { userId: alice.id, items: [{ productId: product.id, quantity: 1 }] } }],
      ['mutation($id: ID!) { restock(productId: $id, quantity: 1) { stock } }', { id: product.id }],
    ];
    for (const [query, variables] of cases) {
      const res = await graphql(stack.url, query, variables);
      expect(codes(res), query).toEqual(['UNAUTHENTICATED']);
    }
  });

  it("lets a customer read their own order with their email, and refuses another customer's with FORBIDDEN", async () => {
    const own = await graphql(stack.url, ORDER, { id: aliceOrder.id }, await stack.auth(alice.id));
    expect(own.errors).toBeUndefined();
    expect(own.data).toEqual({ order: { id: aliceOrder.id, user: { id: alice.id, email: alice.email } } });

    const other = await graphql(stack.url, ORDER, { id: aliceOrder.id }, await stack.auth(bob.id));
    expect(other.data).toEqual({ order: null });
    expect(codes(other)).toEqual(['FORBIDDEN']);
  });

  it("refuses another customer's notifications, account and order list; lists only the caller's orders", async () => {
    const asBob = await stack.auth(bob.id);
    const notifications = await graphql(stack.url, 'query($id: ID!) { user(id: $id) { notifications { edges { cursor } } } }', { id: alice.id }, asBob);
    expect(codes(notifications)).toEqual(['FORBIDDEN']);
    const list = await graphql(stack.url, 'query($u: ID!) { orders(userId: $u) { edges { node { id } } } }', { u: alice.id }, asBob);
    expect(codes(list)).toEqual(['FORBIDDEN']);
    const users = await graphql(stack.url, '{ users(first: 1) { edges { node { id } } } }', undefined, asBob);
    expect(codes(users)).toEqual(['FORBIDDEN']);

    const mine = await graphql<{ orders: { edges: { node: { user: { id: string } } }[] } }>(
      stack.url,
      '{ orders(first: 100) { edges { node { user { id } } } } }',
      undefined,
      asBob,
    );
    expect(mine.errors).toBeUndefined();
    const expected = shop.orders.filter((o) => o.userId === bob.id).length;
    expect(mine.data?.orders.edges).toHaveLength(Math.min(expected, 100));
    expect(new Set(mine.data?.orders.edges.map((e) => e.node.user.id))).toEqual(new Set(expected > 0 ? [bob.id] : []));
  });

  it('places an order for the caller, and refuses a customer placing one for someone else', async () => {
    const asAlice = await stack.auth(alice.id);
    const placed = await graphql<{ placeOrder: { id: string; user: { id: string } } }>(
      stack.url,
      PLACE,
      { input: { items: [{ productId: product.id, quantity: 1 }] } },
      asAlice,
    );
    expect(placed.errors).toBeUndefined();
    expect(placed.data?.placeOrder.user.id).toBe(alice.id);

    const before = await stack.subgraphs.orders.db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders');
    const forOther = await graphql(stack.url, PLACE, { input: { userId: bob.id, items: [{ productId: product.id, quantity: 1 }] } }, asAlice);
    expect(codes(forOther)).toEqual(['FORBIDDEN']);
    const after = await stack.subgraphs.orders.db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders');
    expect(after[0]?.n).toBe(before[0]?.n);

    // Bob may not cancel it; alice may.
    const id = placed.data!.placeOrder.id;
    const CANCEL = 'mutation($id: ID!) { cancelOrder(id: $id) { id status } }';
    expect(codes(await graphql(stack.url, CANCEL, { id }, await stack.auth(bob.id)))).toEqual(['FORBIDDEN']);
    const cancelled = await graphql(stack.url, CANCEL, { id }, asAlice);
    expect(cancelled.errors).toBeUndefined();
    expect(cancelled.data).toEqual({ cancelOrder: { id, status: 'CANCELLED' } });
  });

  it('keeps order status, products and stock changes for administrators', async () => {
    const asAlice = await stack.auth(alice.id);
    const admin = await stack.auth('admin');
    const STATUS = 'mutation($id: ID!) { updateOrderStatus(id: $id, status: SHIPPED) { status } }';
    const RESTOCK = 'mutation($id: ID!) { restock(productId: $id, quantity: 3) { id stock } }';
    const CREATE = `mutation { createProduct(input: { sku: "AUTH-1", name: "Lamp", description: "", price: { amount: 100, currency: "USD" },
      category: "lighting", weightGrams: 10 }) { id } }`;
    const UPDATE = 'mutation($id: ID!) { updateProduct(id: $id, input: { name: "Renamed" }) { name } }';

    const stockBefore = (await graphql<{ product: { stock: number } }>(stack.url, 'query($id: ID!) { product(id: $id) { stock } }', { id: product.id })).data!.product.stock;
    expect(codes(await graphql(stack.url, STATUS, { id: aliceOrder.id }, asAlice))).toEqual(['FORBIDDEN']);
    expect(codes(await graphql(stack.url, RESTOCK, { id: product.id }, asAlice))).toEqual(['FORBIDDEN']);
    expect(codes(await graphql(stack.url, CREATE, undefined, asAlice))).toEqual(['FORBIDDEN']);
    expect(codes(await graphql(stack.url, UPDATE, { id: product.id }, asAlice))).toEqual(['FORBIDDEN']);
    const unchanged = await graphql<{ product: { name: string; stock: number } }>(stack.url, 'query($id: ID!) { product(id: $id) { name stock } }', { id: product.id });
    expect(unchanged.data?.product).toEqual({ name: product.name, stock: stockBefore });

    const restocked = await graphql<{ restock: { stock: number } }>(stack.url, RESTOCK, { id: product.id }, admin);
    expect(restocked.errors).toBeUndefined();
    expect(restocked.data?.restock.stock).toBe(stockBefore + 3);
    const created = await graphql(stack.url, CREATE, undefined, admin);
    expect(created.errors).toBeUndefined();
    // The administrator reads any order and any account.
    const read = await graphql(stack.url, ORDER, { id: aliceOrder.id }, admin);
    expect(read.data).toEqual({ order: { id: aliceOrder.id, user: { id: alice.id, email: alice.email } } });
  });
});

describe('subscriptions through the router', () => {
  type Outcome = { data?: unknown; errors?: unknown; closed?: { code: number; reason: string } };
  /** Subscribes and resolves with the first event, error or socket close. */
  function first(query: string, variables: Record<string, unknown>, authorization?: string): Promise<Outcome> {
    return new Promise((resolve) => {
      const client = createClient({
        url: stack.url.replace('http', 'ws'),
        webSocketImpl: WebSocket,
        lazy: true,
        retryAttempts: 0,
        ...(authorization ? { connectionParams: { authorization } } : {}),
        on: {
          closed: (event) => {
            const { code, reason } = event as { code: number; reason: string };
            resolve({ closed: { code, reason } });
          },
        },
      });
      clients.push(client);
      const stop = client.subscribe(
        { query, variables },
        {
          next: (result) => {
            stop();
            resolve(result as Outcome);
          },
          error: (error) => resolve(Array.isArray(error) ? { errors: error } : { errors: [error] }),
          complete: () => undefined,
        },
      );
    });
  }
  const FOLLOW = 'subscription($id: ID!) { orderStatusChanged(orderId: $id) { id status user { id email } } }';
  const UPDATES = 'subscription($u: ID!) { orderUpdates(userId: $u) { id } }';
  const codesOf = (outcome: Outcome) => (outcome.errors as { extensions?: { code?: string } }[] | undefined)?.map((e) => e.extensions?.code);

  it('sends the owner their order, with fields from users under their identity', async () => {
    const outcome = await first(FOLLOW, { id: aliceOrder.id }, `Bearer ${await stack.token(alice.id)}`);
    expect(outcome.errors).toBeUndefined();
    expect(outcome.data).toEqual({
      orderStatusChanged: { id: aliceOrder.id, status: aliceOrder.status, user: { id: alice.id, email: alice.email } },
    });
  });

  it('refuses an anonymous subscriber UNAUTHENTICATED and another customer FORBIDDEN', async () => {
    expect(codesOf(await first(FOLLOW, { id: aliceOrder.id }))).toEqual(['UNAUTHENTICATED']);
    const asBob = `Bearer ${await stack.token(bob.id)}`;
    expect(codesOf(await first(FOLLOW, { id: aliceOrder.id }, asBob))).toEqual(['FORBIDDEN']);
    expect(codesOf(await first(UPDATES, { u: alice.id }, asBob))).toEqual(['FORBIDDEN']);
    expect(codesOf(await first(UPDATES, { u: alice.id }))).toEqual(['UNAUTHENTICATED']);
  });

  it('closes a connection whose token does not verify with 4403 Forbidden', async () => {
    const outcome = await first(FOLLOW, { id: aliceOrder.id }, 'Bearer not-a-jwt');
    expect(outcome.closed).toEqual({ code: 4403, reason: 'Forbidden' });
  });
});

describe('forged identities sent straight to a subgraph', () => {
  const direct = (headers: Record<string, string>) =>
    graphql(stack.subgraphs.orders.url, ORDER.replace(' user { id email }', ''), { id: aliceOrder.id }, headers);

  it('answers the router-signed identity and refuses forged ones with 401 UNAUTHENTICATED', async () => {
    const good = await direct({ [IDENTITY_HEADER]: signIdentity({ sub: alice.id, role: 'CUSTOMER' }, 'orders', DEV_IDENTITY_SECRET) });
    expect(good.data).toEqual({ order: { id: aliceOrder.id } });
    const forgeries = [
      signIdentity({ sub: bob.id, role: 'ADMIN' }, 'orders', 'not-the-identity-secret'),
      signIdentity({ sub: alice.id, role: 'CUSTOMER' }, 'users', DEV_IDENTITY_SECRET),
      signIdentity({ sub: alice.id, role: 'CUSTOMER' }, 'orders', DEV_IDENTITY_SECRET, Date.now() - 120_000),
      `${Buffer.from(JSON.stringify({ sub: bob.id, role: 'ADMIN', aud: 'orders', exp: 9_999_999_999 })).toString('base64url')}.${
        signIdentity({ sub: bob.id, role: 'CUSTOMER' }, 'orders', DEV_IDENTITY_SECRET).split('.')[1]
      }`,
    ];
    for (const forged of forgeries) {
      const res = await direct({ [IDENTITY_HEADER]: forged });
      expect(res.status).toBe(401);
      expect(codes(res)).toEqual(['UNAUTHENTICATED']);
    }
    // Without any identity the subgraph treats the caller as anonymous.
    expect(codes(await direct({}))).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses a forged identity on a subscription sent straight to the subgraph', async () => {
    const client = createClient({ url: stack.subgraphs.orders.url.replace('http', 'ws'), webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
    clients.push(client);
    const errors = await new Promise<unknown>((resolve) => {
      client.subscribe(
        {
          query: 'subscription($id: ID!) { orderStatusChanged(orderId: $id) { id } }',
          variables: { id: aliceOrder.id },
          extensions: { identity: signIdentity({ sub: DEMO_ADMIN.id, role: 'ADMIN' }, 'orders', 'not-the-identity-secret') },
        },
        { next: () => resolve('event'), error: resolve, complete: () => resolve('complete') },
      );
    });
    expect((errors as { extensions?: { code?: string } }[]).map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('production-style keys: tokens signed ES256, verified through the JWKS URL', () => {
  let redis: TestRedis;
  let keyedUsers: TestSubgraph;
  let router: Awaited<ReturnType<typeof startRouter>>;

  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    redis = await createTestRedis('auth-jwks');
    keyedUsers = await startTestSubgraph(users, {
      seed: true,
      env: {
        REDIS_URL: redis.url,
        QUEUE_PREFIX: redis.prefix,
        NOTIFICATION_WORKER_IN_PROCESS: 'false',
        JWT_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
    });
    router = await startRouter(COMMITTED_SUPERGRAPH, { users: keyedUsers.url }, undefined, {
      JWT_JWKS_URL: keyedUsers.url.replace('/graphql', '/.well-known/jwks.json'),
      RATE_LIMIT_MAX: '0',
    });
  });
  afterAll(async () => {
    await router?.stop();
    await keyedUsers?.close();
    await redis?.cleanup();
  });

  it('accepts a token from login and refuses one signed with the development secret', async () => {
    const token = await login(router.url, DEMO_ADMIN.email, DEMO_ADMIN.password);
    const me = await graphql(router.url, '{ me { id role } }', undefined, bearer(token));
    expect(me.errors).toBeUndefined();
    expect(me.data).toEqual({ me: { id: DEMO_ADMIN.id, role: 'ADMIN' } });

    const hs256 = await login(stack.url, DEMO_ADMIN.email, DEMO_ADMIN.password);
    const refused = await graphql(router.url, '{ me { id } }', undefined, bearer(hs256));
    expect(refused.status).toBe(401);
    expect(codes(refused)).toEqual(['UNAUTHENTICATED']);
  });
});
