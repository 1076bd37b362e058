import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import { ADMIN, identityHeaders, graphql } from '@shop/common/testing';
import { placeOrder, rowCounts, startSagaStack, type SagaStack } from './stack.js';

const shop = demoShop();
const userId = shop.users[0]!.id;
const p = (i: number) => shop.products[i]!.id;
const UNKNOWN = '00000000-0000-4000-8000-00000000000a';
let stack: SagaStack;
let euroProduct: string;
let luxuryProduct: string;

// No inventory: these orders are refused before anything is written, so nothing would reach it.
beforeAll(async () => {
  stack = await startSagaStack('place-order', { inventory: false });
  const res = await graphql<{ createProduct: { id: string } }>(
    stack.products.url,
    `mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }`,
    {
      input: {
        sku: 'EUR-1',
        name: 'Euro Kettle',
        description: '',
        price: { amount: 2500, currency: 'EUR' },
        category: 'kitchen',
        weightGrams: 900,
      },
    },
    identityHeaders('products', ADMIN),
  );
  expect(res.errors).toBeUndefined();
  euroProduct = res.data!.createProduct.id;
  const luxury = await graphql<{ createProduct: { id: string } }>(
    stack.products.url,
    `mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }`,
    {
      input: {
        sku: 'LUX-1',
        name: 'Golden Kettle',
        description: '',
        price: { amount: 2_000_000_000, currency: 'USD' },
        category: 'kitchen',
        weightGrams: 900,
      },
    },
    identityHeaders('products', ADMIN),
  );
  expect(luxury.errors).toBeUndefined();
  luxuryProduct = luxury.data!.createProduct.id;
});
afterAll(() => stack?.close());

const line = (productId: string, quantity = 1) => ({ productId, quantity });

describe('placeOrder validation', () => {
  it.each([
    ['no lines', userId, [], 'BAD_USER_INPUT', 'input.items'],
    ['51 lines', userId, Array.from({ length: 51 }, (_, i) => line(p(i))), 'BAD_USER_INPUT', 'input.items'],
    ['a malformed user id', 'user-1', [line(p(0))], 'BAD_USER_INPUT', 'input.userId'],
    ['a malformed product id', userId, [line(p(0)), line('product-2')], 'BAD_USER_INPUT', 'input.items[1].productId'],
    ['a quantity of 0', userId, [line(p(0), 0)], 'BAD_USER_INPUT', 'input.items[0].quantity'],
    ['a quantity above 1000', userId, [line(p(0)), line(p(1), 1001)], 'BAD_USER_INPUT', 'input.items[1].quantity'],
    ['merged quantities above 1000', userId, [line(p(0), 600), line(p(1)), line(p(0), 401)], 'BAD_USER_INPUT', 'input.items[2].quantity'],
    ['an unknown user', UNKNOWN, [line(p(0))], 'NOT_FOUND', 'input.userId'],
    ['an unknown product', userId, [line(p(0)), line(p(1)), line(UNKNOWN)], 'NOT_FOUND', 'input.items[2].productId'],
  ])('refuses %s with %s and writes nothing', async (_name, user, items, code, field) => {
    const before = await rowCounts(stack.orders.db);
    const res = await placeOrder(stack.orders.url, user, items);
    expect(res.data).toBeNull();
    expect(res.errors).toHaveLength(1);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code, field });
    expect(res.errors?.[0]?.message.startsWith(`${field}: `)).toBe(true);
    expect(await rowCounts(stack.orders.db)).toEqual(before);
  });

  it('says which product is unknown and which lines add up too much', async () => {
    const unknown = await placeOrder(stack.orders.url, userId, [line(p(0)), line(UNKNOWN)]);
    expect(unknown.errors?.[0]?.message).toBe(`input.items[1].productId: product ${UNKNOWN} does not exist`);
    const merged = await placeOrder(stack.orders.url, userId, [line(p(0), 600), line(p(0), 401)]);
    expect(merged.errors?.[0]?.message).toBe(
      `input.items[1].quantity: product ${p(0)} is also on input.items[0]; together the lines ask for 1001 units, at most 1000`,
    );
  });

  it('accepts exactly 50 lines and merged quantities of exactly 1000', async () => {
    const fifty = await placeOrder(stack.orders.url, userId, Array.from({ length: 50 }, (_, i) => line(p(i), 1 + (i % 3))));
    expect(fifty.errors).toBeUndefined();
    expect(fifty.data?.placeOrder.items).toHaveLength(50);
    const merged = await placeOrder(stack.orders.url, userId, [line(p(60), 999), line(p(60), 1)]);
    expect(merged.errors).toBeUndefined();
    expect(merged.data?.placeOrder.items.map((i) => i.quantity)).toEqual([1000]);
  });

  it('refuses products priced in different currencies', async () => {
    const before = await rowCounts(stack.orders.db);
    const res = await placeOrder(stack.orders.url, userId, [line(p(0)), line(euroProduct)]);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.items[1].productId' });
    expect(res.errors?.[0]?.message).toBe('input.items[1].productId: is priced in EUR but input.items[0] in USD; one order has one currency');
    expect(await rowCounts(stack.orders.db)).toEqual(before);
  });

  it('refuses an order whose total does not fit in a Money amount', async () => {
    const before = await rowCounts(stack.orders.db);
    const res = await placeOrder(stack.orders.url, userId, [line(p(0)), line(luxuryProduct, 2)]);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.items' });
    expect(await rowCounts(stack.orders.db)).toEqual(before);
  });

  it('captures prices in the currency of the products', async () => {
    const res = await placeOrder(stack.orders.url, userId, [line(euroProduct, 2)]);
    expect(res.errors).toBeUndefined();
    expect(res.data?.placeOrder.total).toEqual({ amount: 5000, currency: 'EUR' });
  });

  it('forwards the request id to the services it asks', async () => {
    const seen: string[] = [];
    const original = globalThis.fetch;
    // Only observes the outgoing requests of this process; the subgraphs are still real.
    globalThis.fetch = (input, init) => {
      const headers = new Headers(init?.headers);
      if (String(input) !== stack.orders.url) seen.push(`${String(input)} ${headers.get('x-request-id')}`);
      return original(input, init);
    };
    try {
      const res = await graphql(stack.orders.url, 'mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }', {
        input: { userId, items: [line(p(0))] },
      }, { ...identityHeaders('orders', ADMIN), 'x-request-id': 'trace-123' });
      expect(res.errors).toBeUndefined();
    } finally {
      globalThis.fetch = original;
    }
    expect(seen.sort()).toEqual([`${stack.products.url} trace-123`, `${stack.users.url} trace-123`].sort());
  });

  // Last: it stops the products subgraph.
  it('answers SERVICE_UNAVAILABLE and writes nothing when products cannot be reached', async () => {
    await stack.products.stop();
    const before = await rowCounts(stack.orders.db);
    const started = Date.now();
    const res = await placeOrder(stack.orders.url, userId, [line(p(0))]);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', service: 'products' });
    expect(res.errors?.[0]?.message).toMatch(/^The products service is unavailable \(.+\); nothing was written, please try again$/);
    // Two retries with short backoff, not the 3 s timeout: a refused connection fails at once.
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(await rowCounts(stack.orders.db)).toEqual(before);
  });
});
