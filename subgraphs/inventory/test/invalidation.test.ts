import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import { ADMIN, generationChanges, graphql, startWithAndWithoutRuntime, type SubgraphPair } from '@shop/common/testing';
import { inventory, type InventoryRuntime } from '../src/server.js';

// The reservation worker's announcements are tested with the reservations, in reservations.test.ts.
const shop = demoShop();
let pair: SubgraphPair<InventoryRuntime>;

const RESTOCK = 'mutation($id: ID!, $q: Int!) { restock(productId: $id, quantity: $q) { id stock } }';
const STOCK = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id stock } } }';

beforeAll(async () => {
  // The same subgraph without its runtime has no Redis: it must not say that it keeps the contract.
  pair = await startWithAndWithoutRuntime(inventory, 'inventory-invalidation', { seed: true });
});
afterAll(() => pair?.close());

describe('inventory subgraph: entity cache contract', () => {
  it('says so on its answers when its runtime has Redis', async () => {
    const p = shop.products[30]!;
    const res = await graphql(pair.subgraph.url, STOCK, { r: [{ __typename: 'Product', id: p.id }] });
    expect(res.data).toEqual({ _entities: [{ id: p.id, stock: p.stock }] });
    expect(res.headers.get('x-shop-entity-cache')).toBe('1');
  });

  it('increments the generation of a restocked product before answering, also for its first delivery', async () => {
    const known = shop.products[31]!;
    const unknown = '00000000-0000-4000-8000-0000000000c1';
    for (const [id, stock] of [
      [known.id, known.stock + 5],
      [unknown, 5],
    ] as const) {
      const { result: res, changed } = await generationChanges(pair.redis, () => graphql(pair.subgraph.url, RESTOCK, { id, q: 5 }, pair.subgraph.as(ADMIN)));
      expect(res.data).toEqual({ restock: { id, stock } });
      expect(changed).toEqual({ [`inventory:Product:${id}`]: 1 });
    }
  });

  it('increments nothing for a restock it refuses, including one the database refuses', async () => {
    const p = shop.products[32]!;
    // So near the column's maximum that the largest delivery would overflow it.
    await pair.subgraph.db.query('UPDATE stock SET available = 2147483000 WHERE product_id = $1', [p.id]);
    const refused: [string, number, Record<string, string>][] = [
      [p.id, 0, pair.subgraph.as(ADMIN)],
      [p.id, 1_000_000, pair.subgraph.as(ADMIN)],
      ['nope', 5, pair.subgraph.as(ADMIN)],
      [p.id, 5, {}],
    ];
    for (const [id, q, headers] of refused) {
      const { result: res, changed } = await generationChanges(pair.redis, () => graphql(pair.subgraph.url, RESTOCK, { id, q }, headers));
      expect(res.errors?.[0]?.extensions?.code).toMatch(/^(BAD_USER_INPUT|UNAUTHENTICATED)$/);
      expect(changed).toEqual({});
    }
  });

  it('without a runtime still restocks, and does not say that it keeps the contract', async () => {
    const p = shop.products[33]!;
    const res = await graphql(pair.bare.url, RESTOCK, { id: p.id, q: 2 }, pair.bare.as(ADMIN));
    expect(res.data).toEqual({ restock: { id: p.id, stock: p.stock + 2 } });
    expect(res.headers.get('x-shop-entity-cache')).toBeNull();
  });
});
