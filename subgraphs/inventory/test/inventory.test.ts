import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import {
  ADMIN,
  countStatements,
  createTestRedis,
  graphql,
  startTestSubgraph,
  type GraphQLResponse,
  type TestRedis,
  type TestSubgraph,
} from '@shop/common/testing';
import { inventory } from '../src/server.js';

let subgraph: TestSubgraph & { runtime: { stop(): Promise<void> } | undefined };
let redis: TestRedis;
const shop = demoShop();
const UNKNOWN = '00000000-0000-4000-8000-000000000000';

interface StockEntity {
  id: string;
  stock: number;
  inStock: boolean;
}
interface ShippingEntity {
  id: string;
  shippingEstimate: { amount: number; currency: string } | null;
}

const RESTOCK = 'mutation($id: ID!, $q: Int!) { restock(productId: $id, quantity: $q) { id stock inStock shippingEstimate { amount } } }';

beforeAll(async () => {
  // The subgraph starts its queue workers; they get a Redis prefix of their own.
  redis = await createTestRedis('inventory');
  subgraph = await startTestSubgraph(inventory, { seed: true, env: { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix } });
  // These tests count SQL statements; the outbox relay's polling would add to them, and they need no queues.
  await subgraph.runtime?.stop();
});
afterAll(async () => {
  await subgraph?.close();
  await redis?.cleanup();
});

async function entities<T>(selection: string, reps: Record<string, unknown>[]): Promise<{ res: GraphQLResponse<{ _entities: (T | null)[] }>; statements: number }> {
  let res: GraphQLResponse<{ _entities: (T | null)[] }> = {};
  const statements = await countStatements(subgraph.db, async () => {
    res = await graphql<{ _entities: (T | null)[] }>(
      subgraph.url,
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { ${selection} } } }`,
      { r: reps },
    );
  });
  return { res, statements };
}

async function stockRow(productId: string): Promise<number | undefined> {
  const [row] = await subgraph.db.query<{ available: number }>('SELECT available FROM stock WHERE product_id = $1', [productId]);
  return row?.available;
}

async function totals(): Promise<{ rows: number; units: number }> {
  const [row] = await subgraph.db.query<{ rows: number; units: number }>(
    'SELECT count(*)::int AS rows, coalesce(sum(available), 0)::float8 AS units FROM stock',
  );
  return row!;
}

describe('inventory subgraph: stock', () => {
  it('seeds the demo stock once, however often it runs', async () => {
    expect(await inventory.seed(subgraph.db)).toEqual({ inserted: 0 });
    expect(await totals()).toEqual({
      rows: shop.products.length,
      units: shop.products.reduce((sum, p) => sum + p.stock, 0),
    });
  });

  it('resolves the stock of many references with one SQL statement', async () => {
    const sample = shop.products.slice(0, 40);
    const reps: Record<string, unknown>[] = sample.map((p) => ({ __typename: 'Product', id: p.id }));
    reps.push({ __typename: 'Product', id: UNKNOWN }, { __typename: 'Product', id: 'malformed' });
    const { res, statements } = await entities<StockEntity>('id stock inStock', reps);
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities).toEqual([
      ...sample.map((p) => ({ id: p.id, stock: p.stock, inStock: p.stock > 0 })),
      { id: UNKNOWN, stock: 0, inStock: false },
      null,
    ]);
    // The demo data has sold-out products; make sure the sample exercises them.
    expect(sample.filter((p) => p.stock === 0)).toHaveLength(4);
    expect(statements).toBe(1);
  });
});

describe('inventory subgraph: shipping estimate', () => {
  const rep = (amount: number, weightGrams: number, currency = 'USD') => ({
    __typename: 'Product',
    id: shop.products[0]!.id,
    price: { amount, currency },
    weightGrams,
  });

  it('computes the estimate from the price and weight in the representation, without SQL', async () => {
    const { res, statements } = await entities<ShippingEntity>('shippingEstimate { amount currency }', [
      rep(10_000, 20_000),
      rep(9_999, 1),
      rep(9_999, 1_000),
      rep(9_999, 1_001),
      rep(199, 20_000),
      rep(5_000, 2_500, 'EUR'),
    ]);
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities.map((e) => e?.shippingEstimate)).toEqual([
      { amount: 0, currency: 'USD' },
      { amount: 649, currency: 'USD' },
      { amount: 649, currency: 'USD' },
      { amount: 799, currency: 'USD' },
      { amount: 3_499, currency: 'USD' },
      { amount: 949, currency: 'EUR' },
    ]);
    expect(statements).toBe(0);
  });

  it('serves stock and the estimate together with one statement', async () => {
    const sample = shop.products.slice(50, 60);
    const reps = sample.map((p) => ({
      __typename: 'Product',
      id: p.id,
      price: { amount: p.priceAmount, currency: p.currency },
      weightGrams: p.weightGrams,
    }));
    const { res, statements } = await entities<StockEntity & ShippingEntity>('id stock inStock shippingEstimate { amount currency }', reps);
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities).toEqual(
      sample.map((p) => ({
        id: p.id,
        stock: p.stock,
        inStock: p.stock > 0,
        shippingEstimate: {
          amount: p.priceAmount >= 10_000 ? 0 : 499 + 150 * Math.ceil(p.weightGrams / 1000),
          currency: 'USD',
        },
      })),
    );
    expect(statements).toBe(1);
  });

  it('answers null for the estimate when the representation has no price or weight', async () => {
    const id = shop.products[1]!.id;
    const { res } = await entities<ShippingEntity>('id shippingEstimate { amount }', [
      { __typename: 'Product', id },
      { __typename: 'Product', id, price: { amount: 100, currency: 'USD' } },
    ]);
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities).toEqual([
      { id, shippingEstimate: null },
      { id, shippingEstimate: null },
    ]);
  });
});

describe('inventory subgraph: representations a client got wrong', () => {
  const id = () => shop.products[0]!.id;

  it('refuses a representation of a type that is not an entity here with BAD_USER_INPUT, not an internal error', async () => {
    for (const [typename, field] of [
      ['Nope', 'representations[1].__typename'],
      ['Money', 'representations[1].__typename'],
      [undefined, 'representations[1].__typename'],
    ] as const) {
      const { res } = await entities<StockEntity>('id stock', [{ __typename: 'Product', id: id() }, { __typename: typename, id: id() }]);
      expect(res.errors).toHaveLength(1);
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(res.errors?.[0]?.message).not.toMatch(/_entities resolver|Abstract type/);
    }
  });

  it('refuses out-of-range @requires inputs with BAD_USER_INPUT on that entity and answers the others', async () => {
    const good = { __typename: 'Product', id: id(), price: { amount: 1999, currency: 'USD' }, weightGrams: 1200 };
    for (const [bad, field] of [
      [{ price: { amount: 1e308, currency: 'USD' } }, 'representations.price'],
      [{ price: { amount: -5, currency: 'USD' } }, 'representations.price'],
      [{ price: { amount: 100, currency: 'dollars' } }, 'representations.price'],
      [{ price: 'free' }, 'representations.price'],
      [{ weightGrams: 1e20 }, 'representations.weightGrams'],
      [{ weightGrams: -1 }, 'representations.weightGrams'],
      [{ weightGrams: 'heavy' }, 'representations.weightGrams'],
    ] as const) {
      const { res } = await entities<ShippingEntity>('id shippingEstimate { amount currency }', [good, { ...good, ...bad }]);
      expect(res.errors?.map((e) => [e.extensions?.code, e.extensions?.field, e.path])).toEqual([['BAD_USER_INPUT', field, ['_entities', 1]]]);
      expect(res.data?._entities[0]).toEqual({ id: id(), shippingEstimate: { amount: 499 + 150 * 2, currency: 'USD' } });
      expect(res.data?._entities[1]).toBeNull();
    }
  });
});

describe('inventory subgraph: restock', () => {
  it('adds up deliveries, starting from sold out, in one statement each', async () => {
    const soldOut = shop.products[9]!;
    expect(soldOut.stock).toBe(0);
    let res: GraphQLResponse = {};
    const statements = await countStatements(subgraph.db, async () => {
      res = await graphql(subgraph.url, RESTOCK, { id: soldOut.id, q: 5 }, subgraph.as(ADMIN));
    });
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ restock: { id: soldOut.id, stock: 5, inStock: true, shippingEstimate: null } });
    expect(statements).toBe(1);

    const again = await graphql(subgraph.url, RESTOCK, { id: soldOut.id.toUpperCase(), q: 7 }, subgraph.as(ADMIN));
    expect(again.data).toEqual({ restock: { id: soldOut.id, stock: 12, inStock: true, shippingEstimate: null } });
    expect(await stockRow(soldOut.id)).toBe(12);

    const stocked = shop.products[0]!;
    const more = await graphql(subgraph.url, RESTOCK, { id: stocked.id, q: 1_000_000 }, subgraph.as(ADMIN));
    expect(more.data).toMatchObject({ restock: { stock: stocked.stock + 1_000_000 } });
  });

  it('creates the stock row of a product inventory had no record of', async () => {
    const id = '11111111-1111-4111-8111-111111111111';
    expect(await stockRow(id)).toBeUndefined();
    const res = await graphql(subgraph.url, RESTOCK, { id, q: 3 }, subgraph.as(ADMIN));
    expect(res.data).toEqual({ restock: { id, stock: 3, inStock: true, shippingEstimate: null } });
    expect(await stockRow(id)).toBe(3);
  });

  it.each([
    [{ id: shop.products[5]!.id, q: 0 }, 'quantity'],
    [{ id: shop.products[5]!.id, q: -4 }, 'quantity'],
    [{ id: shop.products[5]!.id, q: 1_000_001 }, 'quantity'],
    [{ id: 'not-a-uuid', q: 1 }, 'productId'],
  ])('refuses restock(%j) and writes nothing', async (variables, field) => {
    const before = await totals();
    const res = await graphql(subgraph.url, RESTOCK, variables, subgraph.as(ADMIN));
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(await totals()).toEqual(before);
  });

  it('refuses a delivery that would overflow the stock column and keeps the old level', async () => {
    const id = shop.products[6]!.id;
    await subgraph.db.query('UPDATE stock SET available = 2147000000 WHERE product_id = $1', [id]);
    const res = await graphql(subgraph.url, RESTOCK, { id, q: 1_000_000 }, subgraph.as(ADMIN));
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'quantity' });
    expect(await stockRow(id)).toBe(2_147_000_000);
  });

  it('refuses negative stock in the database itself', async () => {
    const id = shop.products[7]!.id;
    const before = await stockRow(id);
    await expect(subgraph.db.query('UPDATE stock SET available = -1 WHERE product_id = $1', [id])).rejects.toMatchObject({
      code: '23514',
    });
    expect(await stockRow(id)).toBe(before);
  });
});
