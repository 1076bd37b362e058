import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import { graphql } from '@shop/common/testing';
import { startStack, type Stack } from './stack.js';

const shop = demoShop();
let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.stop());

describe('router with a subgraph down', () => {
  it('still answers, with partial data and an error on the affected path', async () => {
    const order = shop.orders[1]!;
    const product = shop.products[2]!;
    const query = `query($o: ID!, $p: ID!) {
      order(id: $o) { id status user { name } }
      product(id: $p) { name stock }
    }`;
    const healthy = await graphql(stack.url, query, { o: order.id, p: product.id });
    expect(healthy.errors).toBeUndefined();

    await stack.subgraphs.inventory.stop();
    const res = await graphql<{ order: { id: string; user: { name: string } } | null; product: unknown }>(stack.url, query, {
      o: order.id,
      p: product.id,
    });
    expect(res.status).toBe(200);
    expect(res.data?.order).toEqual({
      id: order.id,
      status: order.status,
      user: { name: shop.users.find((u) => u.id === order.userId)!.name },
    });
    expect(res.data?.product).toBeNull();
    expect(res.errors).toEqual([
      expect.objectContaining({
        path: ['product'],
        message: expect.stringContaining('inventory service is unavailable'),
        extensions: expect.objectContaining({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'inventory' }),
      }),
    ]);
  });

  it('puts an error on each affected entity inside lists', async () => {
    const order = shop.orders[0]!;
    const buyer = shop.users[4]!;
    const res = await graphql<{ order: unknown; user: { name: string } | null }>(
      stack.url,
      `query($o: ID!, $u: ID!) { order(id: $o) { id items { product { name stock } } } user(id: $u) { name } }`,
      { o: order.id, u: buyer.id },
    );
    // stock is non-null, so its absence clears the nearest nullable parent (the order);
    // the sibling root field is answered.
    expect(res.data).toEqual({ order: null, user: { name: buyer.name } });
    expect(res.errors?.map((e) => e.path)).toEqual(order.lines.map((_, i) => ['order', 'items', i, 'product']));
    expect(res.errors?.every((e) => e.extensions?.code === 'SUBGRAPH_UNAVAILABLE')).toBe(true);
  });
});
