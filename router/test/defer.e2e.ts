import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { Defer20220824Handler } from '@apollo/client/incremental';
import { demoShop } from '@shop/common';
import { graphql } from '@shop/common/testing';
import { COMMITTED_SUPERGRAPH, startRouter, startStack, type Stack } from './stack.js';
import { startUpstream, type Upstream } from './upstream.js';

const shop = demoShop();
const product = shop.products[0]!;

const PRODUCT_PAGE = /* GraphQL */ `
  query ProductPage($id: ID!) {
    product(id: $id) {
      id
      name
      price { amount currency }
      ... @defer(label: "shipping") { shippingEstimate { amount currency } stock }
    }
  }
`;

const CATALOG = /* GraphQL */ `
  query Catalog {
    products(first: 5) {
      edges { cursor node { id name ...Stock @defer } }
      pageInfo { hasNextPage }
    }
  }
  fragment Stock on Product { stock inStock shippingEstimate { amount } }
`;

/** Across entity boundaries (orders → users, orders → products → inventory), nested, at the root. */
const ORDER_PAGE = /* GraphQL */ `
  query OrderPage($id: ID!) {
    order(id: $id) {
      id
      status
      ... @defer(label: "customer") { user { name email } }
      items {
        quantity
        product {
          name
          ... @defer(label: "stock") { stock ... @defer(label: "shipping") { shippingEstimate { amount } } }
        }
      }
    }
    ... @defer(label: "catalog") { products(first: 2) { edges { node { sku } } } }
  }
`;

interface Payload {
  data?: Record<string, unknown> | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
  incremental?: { data: Record<string, unknown> | null; path: (string | number)[]; label?: string; errors?: Payload['errors'] }[];
  hasNext?: boolean;
}

/** `@defer` removed: the same operation in one answer. */
function withoutDefer(query: string): string {
  return query.replace(/@defer(\([^)]*\))?/g, '');
}

/** Reads a multipart/mixed response part by part; `onPart` sees each as it arrives. */
async function readMultipart(response: Response, onPart: (payload: Payload) => void = () => {}): Promise<Payload[]> {
  const payloads: Payload[] = [];
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    for (;;) {
      const start = buffer.indexOf('\r\n\r\n');
      const end = start < 0 ? -1 : buffer.indexOf('\r\n---', start);
      if (end < 0) break;
      const payload = JSON.parse(buffer.slice(start + 4, end)) as Payload;
      payloads.push(payload);
      onPart(payload);
      buffer = buffer.slice(end + 5);
    }
    if (done) return payloads;
  }
}

function deferred(url: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'multipart/mixed;deferSpec=20220824,application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
}

function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (value && typeof value === 'object' && existing && typeof existing === 'object') mergeInto(existing as Record<string, unknown>, value as Record<string, unknown>);
    else target[key] = value;
  }
}

/** The data once every incremental item is merged at its path, as a client does. */
function assemble(payloads: Payload[]): Record<string, unknown> {
  const data = structuredClone(payloads[0]!.data ?? {});
  for (const payload of payloads.slice(1)) {
    for (const item of payload.incremental ?? []) {
      if (!item.data) continue;
      let target: unknown = data;
      for (const key of item.path) target = (target as Record<string | number, unknown>)[key];
      mergeInto(target as Record<string, unknown>, item.data);
    }
  }
  return data;
}

/** Keys in the same order as the plain answer, so objects compare equal regardless of arrival order. */
function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, sorted(v)]));
  }
  return value;
}

let stack: Stack;
let admin: Record<string, string>;
let orderId: string;

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.auth('admin');
  const orders = await graphql<{ orders: { edges: { node: { id: string } }[] } }>(stack.url, '{ orders(first: 1) { edges { node { id } } } }', {}, admin);
  orderId = orders.data!.orders.edges[0]!.node.id;
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('@defer over multipart/mixed', () => {
  it('sends the deferred fragment in a later payload, with the same data as the query without @defer', async () => {
    const response = await deferred(stack.url, PRODUCT_PAGE, { id: product.id });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^multipart\/mixed;.*deferSpec=20220824/);
    const payloads = await readMultipart(response);
    expect(payloads).toHaveLength(2);
    expect(payloads[0]).toEqual({
      data: { product: { id: product.id, name: product.name, price: { amount: product.priceAmount, currency: 'USD' } } },
      hasNext: true,
    });
    expect(payloads[1]!.hasNext).toBe(false);
    expect(payloads[1]!.incremental).toEqual([
      { data: { shippingEstimate: expect.any(Object) as unknown, stock: expect.any(Number) as unknown }, path: ['product'], label: 'shipping' },
    ]);
    const plain = await graphql(stack.url, withoutDefer(PRODUCT_PAGE), { id: product.id });
    expect(plain.errors).toBeUndefined();
    expect(sorted(assemble(payloads))).toEqual(sorted(plain.data));
  });

  it('defers under lists: one item per object, at its index', async () => {
    const payloads = await readMultipart(await deferred(stack.url, CATALOG));
    const items = payloads.flatMap((p) => p.incremental ?? []);
    expect(items.map((i) => i.path)).toEqual([0, 1, 2, 3, 4].map((i) => ['products', 'edges', i, 'node']));
    expect(items.every((i) => typeof i.data?.stock === 'number' && i.label === undefined)).toBe(true);
    const plain = await graphql<{ products: { edges: { node: { id: string; name: string } }[] } }>(stack.url, withoutDefer(CATALOG));
    const first = plain.data!.products.edges[0]!.node;
    expect((payloads[0]!.data as typeof plain.data)!.products.edges[0]!.node).toEqual({ id: first.id, name: first.name });
    expect(sorted(assemble(payloads))).toEqual(sorted(plain.data));
  });

  it('defers across entity boundaries, nested and at the root', async () => {
    const payloads = await readMultipart(await deferred(stack.url, ORDER_PAGE, { id: orderId }, admin));
    expect(payloads[0]!.hasNext).toBe(true);
    const initialOrder = (payloads[0]!.data as { order: Record<string, unknown> }).order;
    expect(initialOrder).not.toHaveProperty('user');
    expect(payloads[0]!.data).not.toHaveProperty('products');
    const items = payloads.flatMap((p) => p.incremental ?? []);
    const labels = items.map((i) => i.label);
    expect(new Set(labels)).toEqual(new Set(['customer', 'stock', 'shipping', 'catalog']));
    // The nested fragment arrives after the one it is nested in.
    const stockPayload = payloads.findIndex((p) => p.incremental?.some((i) => i.label === 'stock'));
    const shippingPayload = payloads.findIndex((p) => p.incremental?.some((i) => i.label === 'shipping'));
    expect(shippingPayload).toBeGreaterThan(stockPayload);
    expect(items.find((i) => i.label === 'customer')).toEqual({ data: { user: expect.any(Object) as unknown }, path: ['order'], label: 'customer' });
    expect(items.find((i) => i.label === 'catalog')!.path).toEqual([]);
    expect(payloads.at(-1)!.hasNext).toBe(false);
    expect(payloads.slice(0, -1).every((p) => p.hasNext)).toBe(true);
    const plain = await graphql(stack.url, withoutDefer(ORDER_PAGE), { id: orderId }, admin);
    expect(plain.errors).toBeUndefined();
    expect(sorted(assemble(payloads))).toEqual(sorted(plain.data));
  });

  it('answers in one response, as before, when the client does not accept multipart/mixed', async () => {
    const response = await graphql(stack.url, PRODUCT_PAGE, { id: product.id });
    expect(response.headers.get('content-type')).toMatch(/^application\/(graphql-response\+)?json/);
    const plain = await graphql(stack.url, withoutDefer(PRODUCT_PAGE), { id: product.id });
    expect(response.data).toEqual(plain.data);
    expect(response.errors).toBeUndefined();
  });

  it('answers in one response when every @defer is turned off by its `if`', async () => {
    const query = 'query($d: Boolean!, $id: ID!) { product(id: $id) { name ... @defer(if: $d) { stock } } }';
    const response = await deferred(stack.url, query, { d: false, id: product.id });
    expect(response.headers.get('content-type')).toMatch(/^application\/(graphql-response\+)?json/);
    const body = (await response.json()) as Payload;
    expect(body.data).toEqual({ product: { name: product.name, stock: expect.any(Number) as unknown } });
    const on = await readMultipart(await deferred(stack.url, query, { d: true, id: product.id }));
    expect(on).toHaveLength(2);
  });

  it('keeps the limits and the login rules: over a limit is refused whole; a forbidden deferred field errs in its part', async () => {
    const aliases = Array.from({ length: 31 }, (_, i) => `a${i}: stock`).join(' ');
    const refused = await deferred(stack.url, `query($id: ID!) { product(id: $id) { name ... @defer { ${aliases} } } }`, { id: product.id });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as Payload).errors?.[0]?.extensions?.code).toBe('TOO_MANY_ALIASES');

    const anonymous = await readMultipart(await deferred(stack.url, 'query($id: ID!) { product(id: $id) { name } ... @defer { order(id: $id) { id } } }', { id: orderId }));
    expect(anonymous[0]!.errors).toBeUndefined();
    const item = anonymous[1]!.incremental![0]!;
    expect(item.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('reports a deferred operation in the metrics like any other', async () => {
    await readMultipart(await deferred(stack.url, PRODUCT_PAGE, { id: product.id }));
    const metrics = await (await fetch(stack.metricsUrl)).text();
    expect(metrics).toMatch(/shop_router_graphql_operations_total\{operation="ProductPage",type="query",outcome="ok"\} [1-9]/);
  });
});

describe('@defer with a slow or failing subgraph', () => {
  let inventory: Upstream;
  let router: Awaited<ReturnType<typeof startRouter>>;

  beforeAll(async () => {
    inventory = await startUpstream(stack.subgraphs.inventory.url);
    const urls = Object.fromEntries(Object.entries(stack.subgraphs).map(([name, s]) => [name, s.url]));
    // No REDIS_URL: no entity cache, so every deferred part reaches the inventory upstream.
    router = await startRouter(COMMITTED_SUPERGRAPH, { ...urls, inventory: inventory.url }, undefined, { RATE_LIMIT_MAX: '0' });
  }, 60_000);

  afterAll(async () => {
    await router?.stop();
    await inventory?.close();
  });

  it('sends the first payload while the deferred part still waits for its subgraph', async () => {
    inventory.mode = 'answer';
    inventory.hold();
    const seen: Payload[] = [];
    let initialArrived!: () => void;
    const initial = new Promise<void>((resolve) => (initialArrived = resolve));
    const reading = readMultipart(await deferred(router.url, PRODUCT_PAGE, { id: product.id }), (payload) => {
      seen.push(payload);
      initialArrived();
    });
    await initial;
    await inventory.arrived(inventory.arrivals.length + 1);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.hasNext).toBe(true);
    inventory.release();
    const payloads = await reading;
    expect(payloads).toHaveLength(2);
    expect(payloads[1]!.incremental![0]!.data).toHaveProperty('stock');
  });

  it('keeps the errors of a deferred part in that part', async () => {
    inventory.mode = 'error';
    try {
      const query = 'query($id: ID!) { product(id: $id) { name ... @defer(label: "ship") { shippingEstimate { amount } } } }';
      const payloads = await readMultipart(await deferred(router.url, query, { id: product.id }));
      expect(payloads[0]).toEqual({ data: { product: { name: product.name } }, hasNext: true });
      const [item] = payloads[1]!.incremental!;
      expect(item!.data).toEqual({ shippingEstimate: null });
      expect(item!.path).toEqual(['product']);
      expect(item!.label).toBe('ship');
      // The gateway puts an entity fetch's failure on the entity.
      expect(item!.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([['SUBGRAPH_UNAVAILABLE', ['product']]]);
    } finally {
      inventory.mode = 'answer';
    }
  });
});

describe("Apollo Client's multipart parsing", () => {
  it('HttpLink reads the initial and incremental payloads', async () => {
    // ApolloClient's incremental handler sets this header; the link alone is asked directly here.
    const link = new HttpLink({ uri: stack.url, headers: { accept: 'multipart/mixed;deferSpec=20220824,application/json' } });
    const client = new ApolloClient({ link, cache: new InMemoryCache(), incrementalHandler: new Defer20220824Handler() });
    const results = await new Promise<ApolloLink.Result[]>((resolve, reject) => {
      const seen: ApolloLink.Result[] = [];
      ApolloLink.execute(link, { query: gql(PRODUCT_PAGE), variables: { id: product.id } }, { client }).subscribe({
        next: (result) => seen.push(result),
        error: reject,
        complete: () => resolve(seen),
      });
    });
    expect(results).toHaveLength(2);
    expect(results[0]).toMatchObject({ data: { product: { id: product.id, name: product.name } }, hasNext: true });
    expect(results[1]).toMatchObject({ incremental: [{ path: ['product'], label: 'shipping' }], hasNext: false });
  });

  it('ApolloClient shows the page first and the deferred fields when they arrive, ending with the full data', async () => {
    const client = new ApolloClient({
      link: new HttpLink({ uri: stack.url }),
      cache: new InMemoryCache(),
      incrementalHandler: new Defer20220824Handler(),
    });
    const states: { dataState: string; data: unknown }[] = [];
    await new Promise<void>((resolve, reject) => {
      const subscription = client
        .watchQuery({ query: gql(PRODUCT_PAGE), variables: { id: product.id }, fetchPolicy: 'network-only' })
        .subscribe({
          next: (result) => {
            if (result.loading && result.dataState === 'empty') return;
            states.push({ dataState: result.dataState, data: result.data });
            if (result.dataState === 'complete') {
              subscription.unsubscribe();
              resolve();
            }
          },
          error: reject,
        });
    });
    expect(states[0]!.dataState).toBe('streaming');
    expect(states[0]!.data).not.toHaveProperty('product.stock');
    const plain = await graphql<Record<string, unknown>>(stack.url, withoutDefer(PRODUCT_PAGE).replace('product(id: $id) {', 'product(id: $id) { __typename'), {
      id: product.id,
    });
    const final = states.at(-1)!.data as { product: Record<string, unknown> };
    expect(final.product.stock).toBe((plain.data!.product as Record<string, unknown>).stock);
    expect(final.product.shippingEstimate).toMatchObject((plain.data!.product as { shippingEstimate: object }).shippingEstimate);
    await client.clearStore();
  });
});
