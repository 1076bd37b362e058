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
    expect(res.errors?.length).toBeGreaterThan(0);
    expect(res.errors?.some((e) => e.path?.[0] === 'product')).toBe(true);
  });
});
