import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, demoShop, serveSubgraph, type RunningSubgraph } from '@shop/common';
import { graphql } from '@shop/common/testing';
import { inventory } from '@shop/inventory';
import { COMMITTED_SUPERGRAPH, startRouter, startStack, type Stack } from './stack.js';
import { startUpstream, type Upstream } from './upstream.js';

const shop = demoShop();
const COOLDOWN_MS = 1_500;
let stack: Stack;
/** A router of this file's own over the stack's subgraphs, with a short breaker cooldown. */
let router: Awaited<ReturnType<typeof startRouter>>;
/** Orders and users need a caller: the administrator may read them all. */
let admin: Record<string, string>;

beforeAll(async () => {
  stack = await startStack();
  const urls = Object.fromEntries(Object.entries(stack.subgraphs).map(([name, s]) => [name, s.url]));
  router = await startRouter(COMMITTED_SUPERGRAPH, urls, undefined, {
    SUBGRAPH_BREAKER_FAILURES: '3',
    SUBGRAPH_BREAKER_COOLDOWN_MS: String(COOLDOWN_MS),
    // No health checks: these tests count every connection to inventory, and check the cooldown's bound.
    SUBGRAPH_BREAKER_CHECK_MS: '0',
  });
  admin = await stack.auth('admin');
});
afterAll(async () => {
  await router?.stop();
  await stack?.stop();
});

/** A value of the router's Prometheus metrics (0 when the series does not exist yet), from its metrics port. */
async function metric(metricsUrl: string, series: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Polls until check passes; fails after a generous bound. */
async function until(what: string, check: () => Promise<boolean>, boundMs = 15_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

describe('router with a subgraph down', () => {
  const order = shop.orders[1]!;
  const product = shop.products[2]!;
  const query = `query($o: ID!, $p: ID!) {
    order(id: $o) { id status user { name } }
    product(id: $p) { name stock }
  }`;
  const expectedOrder = { id: order.id, status: order.status, user: { name: shop.users.find((u) => u.id === order.userId)!.name } };
  let restarted: RunningSubgraph | undefined;
  afterAll(() => restarted?.stop());

  it('answers fully while inventory is up', async () => {
    const healthy = await graphql(router.url, query, { o: order.id, p: product.id }, admin);
    expect(healthy.errors).toBeUndefined();
    expect(healthy.data).toEqual({ order: expectedOrder, product: { name: product.name, stock: product.stock } });
  });

  it('still answers once inventory is killed, with partial data and an error on the affected path', async () => {
    await stack.subgraphs.inventory.stop();
    const res = await graphql(router.url, query, { o: order.id, p: product.id }, admin);
    expect(res.status).toBe(200);
    expect(res.data).toEqual({ order: expectedOrder, product: null });
    expect(res.errors).toEqual([
      expect.objectContaining({
        path: ['product'],
        message: expect.stringContaining('inventory service is unavailable'),
        extensions: expect.objectContaining({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'inventory' }),
      }),
    ]);
  });

  it('puts an error on each affected entity inside lists', async () => {
    const listed = shop.orders[0]!;
    const buyer = shop.users[4]!;
    const res = await graphql<{ order: unknown; user: { name: string } | null }>(
      router.url,
      `query($o: ID!, $u: ID!) { order(id: $o) { id items { product { name stock } } } user(id: $u) { name } }`,
      { o: listed.id, u: buyer.id },
      admin,
    );
    // stock is non-null, so its absence clears the nearest nullable parent (the order);
    // the sibling root field is answered.
    expect(res.data).toEqual({ order: null, user: { name: buyer.name } });
    expect(res.errors?.map((e) => e.path)).toEqual(listed.lines.map((_, i) => ['order', 'items', i, 'product']));
    expect(res.errors?.every((e) => e.extensions?.code === 'SUBGRAPH_UNAVAILABLE')).toBe(true);
  });

  it('opens the breaker after repeated failures and then fails fast without calling inventory', async () => {
    // Something accepts on inventory's port now, and cuts every connection: each attempt is counted.
    let attempts = 0;
    const port = stack.subgraphs.inventory.http.port;
    const resetter: TcpServer = createTcpServer((socket) => {
      attempts++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => resetter.listen(port, '127.0.0.1', resolve));
    try {
      await until('the breaker to open', async () => {
        const res = await graphql(router.url, query, { o: order.id, p: product.id }, admin);
        expect(res.data).toEqual({ order: expectedOrder, product: null });
        return router.router.resilience.states().inventory === 'open';
      });
      expect(attempts).toBeGreaterThan(0);
      const seen = attempts;
      for (let i = 0; i < 10; i++) {
        const res = await graphql(router.url, query, { o: order.id, p: product.id }, admin);
        expect(res.data).toEqual({ order: expectedOrder, product: null });
        expect(res.errors).toEqual([
          expect.objectContaining({
            path: ['product'],
            message: expect.stringContaining('inventory service is unavailable (failing fast after repeated errors)'),
            extensions: expect.objectContaining({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'inventory' }),
          }),
        ]);
      }
      expect(attempts).toBe(seen);
      expect(await metric(router.metricsUrl, 'shop_router_subgraph_breaker_state{subgraph="inventory"}')).toBe(2);
      expect(await metric(router.metricsUrl, 'shop_router_subgraph_breaker_opened_total{subgraph="inventory"}')).toBe(1);
      expect(await metric(router.metricsUrl, 'shop_router_subgraph_fetches_rejected_total{subgraph="inventory"}')).toBeGreaterThanOrEqual(10);
    } finally {
      await new Promise<void>((resolve) => resetter.close(() => resolve()));
    }
  });

  it('answers fully again once inventory is back on its port and the breaker has let a probe through', async () => {
    const old = stack.subgraphs.inventory;
    restarted = await serveSubgraph(inventory, old.db, {
      port: old.http.port,
      host: '127.0.0.1',
      production: false,
      log: createLogger('inventory', 'silent'),
      runtime: old.runtime as never,
    });
    // The breaker is still open for the rest of its cooldown; after it, the first request is the probe.
    await delay(COOLDOWN_MS + 200);
    const res = await graphql(router.url, query, { o: order.id, p: product.id }, admin);
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ order: expectedOrder, product: { name: product.name, stock: product.stock } });
    expect(router.router.resilience.states().inventory).toBe('closed');
    expect(await metric(router.metricsUrl, 'shop_router_subgraph_breaker_state{subgraph="inventory"}')).toBe(0);
  });
});

describe('retries and deduplication through the router', () => {
  let products: Upstream;
  let inventoryProxy: Upstream;
  let proxied: Awaited<ReturnType<typeof startRouter>>;

  beforeAll(async () => {
    products = await startUpstream(stack.subgraphs.products.url);
    // The inventory subgraph may be a restarted one by now: forward to its port either way.
    inventoryProxy = await startUpstream(stack.subgraphs.inventory.url);
    const urls = Object.fromEntries(Object.entries(stack.subgraphs).map(([name, s]) => [name, s.url]));
    proxied = await startRouter(
      COMMITTED_SUPERGRAPH,
      { ...urls, products: products.url, inventory: inventoryProxy.url },
      undefined,
      // No breaker here: these tests count every request that reaches a subgraph.
      { SUBGRAPH_BREAKER_FAILURES: '0', INVENTORY_SUBGRAPH_TIMEOUT_MS: '500' },
    );
  });
  const deduplicated = () => metric(proxied.metricsUrl, 'shop_router_subgraph_fetches_deduplicated_total{subgraph="products"}');
  afterAll(async () => {
    await proxied?.stop();
    await products?.close();
    await inventoryProxy?.close();
  });

  it('sends identical concurrent queries to the subgraph once and gives every client the whole answer', async () => {
    const list = `query Page { products(first: 5) { edges { node { id name price { amount currency } } } } }`;
    const expected = await graphql(proxied.url, list);
    expect(expected.errors).toBeUndefined();
    const before = products.arrivals.length;
    const shared = await deduplicated();

    const clients = 10;
    products.hold();
    const answers = Array.from({ length: clients }, () => graphql(proxied.url, list));
    // Released once every client's fetch has joined the one in flight.
    await until('all clients to share one fetch', async () => (await deduplicated()) - shared === clients - 1);
    products.release();
    for (const answer of await Promise.all(answers)) {
      expect(answer.status).toBe(200);
      expect(answer.errors).toBeUndefined();
      expect(answer.data).toEqual(expected.data);
    }
    expect(products.arrivals.length - before).toBe(1);
  });

  it('never shares a fetch between different callers', async () => {
    const [alice, bob] = [shop.users[0]!, shop.users[1]!];
    const callers = [await stack.auth(alice.id), await stack.auth(bob.id)];
    const list = `query Mine { products(first: 3) { edges { node { id name } } } }`;
    const expected = await graphql(proxied.url, list);
    const before = products.arrivals.length;
    const shared = await deduplicated();

    const perCaller = 4;
    products.hold();
    const answers = callers.flatMap((headers) => Array.from({ length: perCaller }, () => graphql(proxied.url, list, undefined, headers)));
    // Released once every client's fetch has either reached products or joined one in flight.
    await until('every fetch to be sent or shared', async () => {
      return products.arrivals.length - before + (await deduplicated()) - shared === answers.length;
    });
    products.release();
    for (const answer of await Promise.all(answers)) expect(answer.data).toEqual(expected.data);

    // Both callers' fetches reached products, each under its own signed identity: Bob was not answered with Alice's.
    const arrivals = products.arrivals.slice(before);
    const subjects = arrivals.map((a) => {
      const [payload] = String(a.headers['x-shop-identity']).split('.');
      return (JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as { sub: string }).sub;
    });
    expect(new Set(subjects)).toEqual(new Set([alice.id, bob.id]));
    // A caller's identical requests did share (the identity is re-signed each second, so allow one more each).
    expect(arrivals.length).toBeLessThanOrEqual(2 * callers.length);
  });

  it("gives up on a subgraph that does not answer within its own deadline, and answers the rest", async () => {
    const product = shop.products[8]!;
    inventoryProxy.mode = 'hang';
    try {
      const res = await graphql(proxied.url, `query($p: ID!) { product(id: $p) { name stock } products(first: 1) { edges { node { name } } } }`, {
        p: product.id,
      });
      expect(res.status).toBe(200);
      expect(res.data).toEqual({ product: null, products: { edges: [{ node: { name: expect.any(String) as string } }] } });
      expect(res.errors).toEqual([
        expect.objectContaining({
          path: ['product'],
          message: 'The inventory service did not answer in time; the fields it provides are missing.',
          extensions: expect.objectContaining({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'inventory' }),
        }),
      ]);
    } finally {
      inventoryProxy.mode = 'answer';
      // The hung requests' connections go; the router opens new ones.
      inventoryProxy.cutConnections();
    }
  });

  it("passes a subgraph's own 4xx refusal on, but not a 401 (the subgraph distrusts the router, not the client)", async () => {
    const list = `{ products(first: 1) { edges { node { name } } } }`;
    products.mode = 'refuse';
    try {
      const error = { message: 'Cannot query field "nope" on type "Product".', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } };
      products.refusal = { status: 400, body: { errors: [error] } };
      const refused = await graphql(proxied.url, list);
      expect(refused.errors).toEqual([
        expect.objectContaining({
          message: error.message,
          extensions: expect.objectContaining({ code: 'GRAPHQL_VALIDATION_FAILED', serviceName: 'products' }),
        }),
      ]);

      products.refusal = { status: 401, body: { errors: [{ message: 'The caller identity is invalid', extensions: { code: 'UNAUTHENTICATED' } }] } };
      const distrusted = await graphql(proxied.url, list);
      expect(distrusted.errors).toEqual([
        expect.objectContaining({ path: ['products'], extensions: expect.objectContaining({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'products' }) }),
      ]);
    } finally {
      products.mode = 'answer';
    }
  });

  it('retries a query whose connection was cut, but never a mutation', async () => {
    const product = shop.products[7]!;
    inventoryProxy.mode = 'drop';
    try {
      const before = inventoryProxy.arrivals.length;
      const read = await graphql(proxied.url, `query($p: ID!) { product(id: $p) { name stock } }`, { p: product.id });
      expect(read.data).toEqual({ product: null });
      expect(read.errors?.[0]?.extensions?.code).toBe('SUBGRAPH_UNAVAILABLE');
      expect(inventoryProxy.arrivals.length - before).toBe(2);

      const write = await graphql(proxied.url, `mutation($p: ID!) { restock(productId: $p, quantity: 1) { id } }`, { p: product.id });
      expect(write.errors).toEqual([
        expect.objectContaining({ path: ['restock'], extensions: expect.objectContaining({ code: 'SUBGRAPH_UNAVAILABLE' }) }),
      ]);
      expect(inventoryProxy.arrivals.length - before).toBe(3);
      expect(inventoryProxy.arrivals.at(-1)!.body).toContain('mutation');
    } finally {
      inventoryProxy.mode = 'answer';
    }
  });
});

describe('a subgraph restarted while its breaker is open', () => {
  let health: Awaited<ReturnType<typeof startRouter>>;
  let instance: RunningSubgraph | undefined;
  const product = shop.products[3]!;
  const query = 'query($p: ID!) { product(id: $p) { name stock } }';
  const serveInventory = (port: number) =>
    serveSubgraph(inventory, stack.subgraphs.inventory.db, { port, host: '127.0.0.1', production: false, log: createLogger('inventory', 'silent') });

  beforeAll(async () => {
    instance = await serveInventory(0);
    const urls = Object.fromEntries(Object.entries(stack.subgraphs).map(([name, s]) => [name, s.url]));
    health = await startRouter(
      COMMITTED_SUPERGRAPH,
      { ...urls, inventory: instance.http.url },
      undefined,
      // A cooldown far longer than the test: only the health checks can let traffic back in time.
      { SUBGRAPH_BREAKER_FAILURES: '3', SUBGRAPH_BREAKER_COOLDOWN_MS: '30000', SUBGRAPH_BREAKER_CHECK_MS: '250' },
    );
  });
  afterAll(async () => {
    await health?.stop();
    await instance?.stop();
  });

  it('is used again within a second of coming back, long before the cooldown ends', async () => {
    const port = instance!.http.port;
    expect((await graphql(health.url, query, { p: product.id })).data).toEqual({ product: { name: product.name, stock: product.stock } });
    await instance!.stop();
    instance = undefined;
    await until('the breaker to open', async () => {
      const res = await graphql(health.url, query, { p: product.id });
      expect(res.data).toEqual({ product: null });
      return health.router.resilience.states().inventory === 'open';
    });
    // Down for a while: the checks find nothing and the breaker stays open.
    await delay(600);
    expect(health.router.resilience.states().inventory).toBe('open');

    instance = await serveInventory(port);
    const back = performance.now();
    await until(
      'inventory to be used again',
      async () => (await graphql(health.url, query, { p: product.id })).data?.product != null,
      5_000,
    );
    expect(performance.now() - back).toBeLessThan(1_000);
    const res = await graphql(health.url, query, { p: product.id });
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ product: { name: product.name, stock: product.stock } });
    expect(health.router.resilience.states().inventory).toBe('closed');
  });
});
