import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop, type DemoProduct } from '@shop/common';
import { ADMIN, countStatements, graphql, startTestSubgraph, type GraphQLResponse, type TestSubgraph } from '@shop/common/testing';
import { products } from '../src/server.js';

let subgraph: TestSubgraph;
const shop = demoShop();
// Byte order, as the sku column's "C" collation sorts.
const bySku = (a: DemoProduct, b: DemoProduct) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0);
const catalog = [...shop.products].sort(bySku);

interface Page {
  edges: { cursor: string; node: { id: string; sku: string } }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

const LIST = `query($filter: ProductFilter, $first: Int, $after: String) {
  products(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id sku } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const CREATE = 'mutation($input: CreateProductInput!) { createProduct(input: $input) { id sku name description price { amount currency } category weightGrams createdAt } }';
const UPDATE = 'mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id sku name description price { amount currency } category weightGrams } }';

beforeAll(async () => {
  subgraph = await startTestSubgraph(products, { seed: true });
});
afterAll(() => subgraph?.close());

async function productCount(): Promise<number> {
  const [row] = await subgraph.db.query<{ n: number }>('SELECT count(*)::int AS n FROM products');
  return row!.n;
}

async function productRow(id: string): Promise<Record<string, unknown> | undefined> {
  const [row] = await subgraph.db.query('SELECT * FROM products WHERE id = $1', [id]);
  return row;
}

async function list(variables: Record<string, unknown>): Promise<GraphQLResponse<{ products: Page }>> {
  return graphql<{ products: Page }>(subgraph.url, LIST, variables);
}

/** Every product a filter matches, read page by page. */
async function listAll(filter: Record<string, unknown> | null, first: number): Promise<{ skus: string[]; pages: number }> {
  const skus: string[] = [];
  let after: string | null = null;
  let pages = 0;
  for (;;) {
    const res: GraphQLResponse<{ products: Page }> = await list({ filter, first, after });
    expect(res.errors).toBeUndefined();
    const page: Page = res.data!.products;
    pages++;
    skus.push(...page.edges.map((e) => e.node.sku));
    expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
    if (!page.pageInfo.hasNextPage) break;
    after = page.pageInfo.endCursor;
  }
  return { skus, pages };
}

function validInput(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sku: 'TST-00001',
    name: 'Test Lamp',
    description: 'A lamp for tests.',
    price: { amount: 2599, currency: 'EUR' },
    category: 'lighting',
    weightGrams: 1200,
    ...overrides,
  };
}

describe('products subgraph: reading', () => {
  it('seeds the demo catalog once, however often it runs', async () => {
    expect(await products.seed(subgraph.db)).toEqual({ inserted: 0 });
    expect(await productCount()).toBe(shop.products.length);
  });

  it('finds a product by id and by sku, and answers null for unknown ones', async () => {
    const p = shop.products[42]!;
    const res = await graphql(
      subgraph.url,
      `query($id: ID!, $sku: String!) {
        byId: product(id: $id) { id sku name description price { amount currency } category weightGrams createdAt }
        bySku: product(sku: $sku) { id }
        upperId: product(id: "${p.id.toUpperCase()}") { id }
        unknownId: product(id: "00000000-0000-4000-8000-000000000000") { id }
        unknownSku: product(sku: "NOPE-1") { id }
      }`,
      { id: p.id, sku: p.sku },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({
      byId: {
        id: p.id,
        sku: p.sku,
        name: p.name,
        description: p.description,
        price: { amount: p.priceAmount, currency: 'USD' },
        category: p.category,
        weightGrams: p.weightGrams,
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      },
      bySku: { id: p.id },
      upperId: { id: p.id },
      unknownId: null,
      unknownSku: null,
    });
  });

  it.each([
    ['product { id }', 'id'],
    [`product(id: "${shop.products[0]!.id}", sku: "${shop.products[0]!.sku}") { id }`, 'sku'],
    ['product(id: "42") { id }', 'id'],
  ])('refuses %s with BAD_USER_INPUT', async (selection, field) => {
    const res = await graphql(subgraph.url, `{ ${selection} }`);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(res.errors?.[0]?.message).toMatch(new RegExp(`^${field}: `));
  });

  it('lists the first page in SKU order by default', async () => {
    const res = await list({});
    expect(res.errors).toBeUndefined();
    expect(res.data!.products.edges.map((e) => e.node.id)).toEqual(catalog.slice(0, 20).map((p) => p.id));
    expect(res.data!.products.pageInfo.hasNextPage).toBe(true);
  });

  it('pages through the whole catalog with cursors', async () => {
    const { skus, pages } = await listAll(null, 100);
    expect(skus).toEqual(catalog.map((p) => p.sku));
    expect(pages).toBe(5);
  });

  it('pages through a filtered listing without gaps or repeats', async () => {
    const { skus } = await listAll({ category: 'kitchen', maxPrice: 30_000 }, 7);
    const expected = catalog.filter((p) => p.category === 'kitchen' && p.priceAmount <= 30_000).map((p) => p.sku);
    expect(expected.length).toBeGreaterThan(14);
    expect(skus).toEqual(expected);
  });

  it('filters by category, ignoring letter case and blanks around it', async () => {
    const res = await list({ filter: { category: ' Books ' }, first: 100 });
    expect(res.errors).toBeUndefined();
    const expected = catalog.filter((p) => p.category === 'books');
    expect(res.data!.products.edges.map((e) => e.node.sku)).toEqual(expected.map((p) => p.sku));
    expect(res.data!.products.pageInfo.hasNextPage).toBe(false);
  });

  it('filters by an inclusive price range', async () => {
    const low = shop.products[10]!.priceAmount;
    const high = shop.products[11]!.priceAmount;
    const [min, max] = low <= high ? [low, high] : [high, low];
    const { skus } = await listAll({ minPrice: min, maxPrice: max }, 100);
    const expected = catalog.filter((p) => p.priceAmount >= min && p.priceAmount <= max).map((p) => p.sku);
    expect(skus).toEqual(expected);
    expect(skus).toContain(shop.products[10]!.sku);
    expect(skus).toContain(shop.products[11]!.sku);

    const exact = await listAll({ minPrice: low, maxPrice: low }, 100);
    expect(exact.skus).toEqual(catalog.filter((p) => p.priceAmount === low).map((p) => p.sku));
  });

  it('searches names case-insensitively and treats % and _ as plain characters', async () => {
    const { skus } = await listAll({ search: 'KETTLE' }, 100);
    const expected = catalog.filter((p) => p.name.toLowerCase().includes('kettle')).map((p) => p.sku);
    expect(expected.length).toBeGreaterThan(0);
    expect(skus).toEqual(expected);

    for (const search of ['%', '_', 'Kettle%', 'K_ttle']) {
      const res = await list({ filter: { search } });
      expect(res.errors).toBeUndefined();
      expect(res.data!.products.edges).toEqual([]);
    }
  });

  it('combines conditions', async () => {
    const { skus } = await listAll({ category: 'electronics', minPrice: 10_000, search: 'smart' }, 100);
    const expected = catalog
      .filter((p) => p.category === 'electronics' && p.priceAmount >= 10_000 && p.name.includes('Smart'))
      .map((p) => p.sku);
    expect(expected.length).toBeGreaterThan(0);
    expect(skus).toEqual(expected);
  });

  it('answers an empty page for first: 0', async () => {
    const res = await list({ first: 0 });
    expect(res.data!.products).toEqual({ edges: [], pageInfo: { hasNextPage: true, endCursor: null } });
  });

  it.each([
    [{ first: -1 }, 'first'],
    [{ first: 101 }, 'first'],
    [{ after: 'not-a-cursor' }, 'after'],
    [{ after: Buffer.from(JSON.stringify([5, 'x'])).toString('base64url') }, 'after'],
    [{ filter: { minPrice: -1 } }, 'filter.minPrice'],
    [{ filter: { maxPrice: -5 } }, 'filter.maxPrice'],
    [{ filter: { minPrice: 500, maxPrice: 499 } }, 'filter.minPrice'],
    [{ filter: { search: 'x'.repeat(101) } }, 'filter.search'],
  ])('refuses products(%j) with BAD_USER_INPUT', async (variables, field) => {
    const res = await list(variables);
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });
});

describe('products subgraph: writing', () => {
  it('creates a product with trimmed text and a lower-case category', async () => {
    const before = await productCount();
    const res = await graphql<{ createProduct: Record<string, unknown> & { id: string } }>(subgraph.url, CREATE, {
      input: validInput({ name: '  Test Lamp ', category: 'Lighting' }),
    }, subgraph.as(ADMIN));
    expect(res.errors).toBeUndefined();
    expect(res.data!.createProduct).toMatchObject({
      sku: 'TST-00001',
      name: 'Test Lamp',
      description: 'A lamp for tests.',
      price: { amount: 2599, currency: 'EUR' },
      category: 'lighting',
      weightGrams: 1200,
    });
    expect(await productCount()).toBe(before + 1);

    const read = await graphql(subgraph.url, '{ product(sku: "TST-00001") { id name } }');
    expect(read.data).toEqual({ product: { id: res.data!.createProduct.id, name: 'Test Lamp' } });
  });

  it.each([
    [{ sku: shop.products[0]!.sku }, 'input.sku'],
    [{ sku: '   ' }, 'input.sku'],
    [{ sku: 'has space' }, 'input.sku'],
    [{ sku: 'S'.repeat(65) }, 'input.sku'],
    [{ name: '  ' }, 'input.name'],
    [{ name: 'n'.repeat(201) }, 'input.name'],
    [{ description: 'd'.repeat(5001) }, 'input.description'],
    [{ price: { amount: 0, currency: 'EUR' } }, 'input.price.amount'],
    [{ price: { amount: -100, currency: 'EUR' } }, 'input.price.amount'],
    [{ price: { amount: 100, currency: 'eur' } }, 'input.price.currency'],
    [{ price: { amount: 100, currency: 'EURO' } }, 'input.price.currency'],
    [{ category: '' }, 'input.category'],
    [{ category: 'c'.repeat(51) }, 'input.category'],
    [{ weightGrams: 0 }, 'input.weightGrams'],
    [{ weightGrams: -1 }, 'input.weightGrams'],
  ])('refuses createProduct(%j) and writes nothing', async (overrides, field) => {
    const before = await productCount();
    const res = await graphql(subgraph.url, CREATE, { input: validInput({ sku: 'TST-REFUSED', ...overrides }) }, subgraph.as(ADMIN));
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(await productCount()).toBe(before);
    expect(await subgraph.db.query("SELECT 1 FROM products WHERE sku = 'TST-REFUSED'")).toEqual([]);
  });

  it('updates the given fields and keeps the others', async () => {
    const p = shop.products[3]!;
    const res = await graphql(subgraph.url, UPDATE, {
      id: p.id,
      input: { name: 'Renamed', price: { amount: 12_345, currency: 'GBP' }, description: null },
    }, subgraph.as(ADMIN));
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({
      updateProduct: {
        id: p.id,
        sku: p.sku,
        name: 'Renamed',
        description: p.description,
        price: { amount: 12_345, currency: 'GBP' },
        category: p.category,
        weightGrams: p.weightGrams,
      },
    });
    const moved = await graphql(subgraph.url, UPDATE, { id: p.id, input: { sku: 'TST-MOVED', weightGrams: 7, category: 'Toys' } }, subgraph.as(ADMIN));
    expect(moved.data).toMatchObject({ updateProduct: { sku: 'TST-MOVED', weightGrams: 7, category: 'toys', name: 'Renamed' } });
    const bySku = await graphql(subgraph.url, '{ old: product(sku: "' + p.sku + '") { id } new: product(sku: "TST-MOVED") { id } }');
    expect(bySku.data).toEqual({ old: null, new: { id: p.id } });
  });

  it('answers NOT_FOUND for an unknown id and BAD_USER_INPUT for a malformed one', async () => {
    const before = await productCount();
    const unknown = await graphql(subgraph.url, UPDATE, { id: '00000000-0000-4000-8000-000000000000', input: { name: 'X' } }, subgraph.as(ADMIN));
    expect(unknown.data).toBeNull();
    expect(unknown.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND' });
    const malformed = await graphql(subgraph.url, UPDATE, { id: 'nope', input: { name: 'X' } }, subgraph.as(ADMIN));
    expect(malformed.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
    expect(await productCount()).toBe(before);
  });

  it.each([
    [{ sku: shop.products[1]!.sku }, 'input.sku'],
    [{ sku: '' }, 'input.sku'],
    [{ name: '' }, 'input.name'],
    [{ price: { amount: 0, currency: 'USD' } }, 'input.price.amount'],
    [{ price: { amount: 100, currency: 'US' } }, 'input.price.currency'],
    [{ category: ' ' }, 'input.category'],
    [{ weightGrams: 0 }, 'input.weightGrams'],
    // A valid change next to an invalid one must not be applied either.
    [{ name: 'Half done', weightGrams: -3 }, 'input.weightGrams'],
  ])('refuses updateProduct(%j) and changes nothing', async (input, field) => {
    const id = shop.products[2]!.id;
    const before = await productRow(id);
    const res = await graphql(subgraph.url, UPDATE, { id, input }, subgraph.as(ADMIN));
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(await productRow(id)).toEqual(before);
  });

  it('refuses out-of-range rows in the database itself', async () => {
    const insert = (price: number, weight: number) =>
      subgraph.db.query(
        `INSERT INTO products (id, sku, name, description, price_amount, currency, category, weight_grams)
         VALUES (gen_random_uuid(), 'TST-RAW', 'Raw', '', $1, 'USD', 'raw', $2)`,
        [price, weight],
      );
    await expect(insert(0, 10)).rejects.toMatchObject({ code: '23514' });
    await expect(insert(10, 0)).rejects.toMatchObject({ code: '23514' });
    expect(await subgraph.db.query("SELECT 1 FROM products WHERE sku = 'TST-RAW'")).toEqual([]);
  });
});

describe('products subgraph: federation', () => {
  const ENTITIES = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id sku name price { amount } } } }';
  type Entities = { _entities: ({ id: string; sku: string; name: string; price: { amount: number } } | null)[] };

  it('resolves many references by id with one SQL statement', async () => {
    const sample = shop.products.slice(100, 140);
    const reps: Record<string, unknown>[] = sample.map((p) => ({ __typename: 'Product', id: p.id }));
    reps.push({ __typename: 'Product', id: 'malformed' });
    let res: GraphQLResponse<Entities> | undefined;
    const statements = await countStatements(subgraph.db, async () => {
      res = await graphql<Entities>(subgraph.url, ENTITIES, { r: reps });
    });
    expect(res?.errors).toBeUndefined();
    expect(res?.data?._entities).toHaveLength(41);
    expect(res?.data?._entities[7]).toEqual({
      id: sample[7]!.id,
      sku: sample[7]!.sku,
      name: sample[7]!.name,
      price: { amount: sample[7]!.priceAmount },
    });
    expect(res?.data?._entities[40]).toBeNull();
    expect(statements).toBe(1);
  });

  it('resolves references by id and by sku together with one statement per key', async () => {
    const sample = shop.products.slice(200, 220);
    const reps = sample.map((p, i) =>
      i % 2 === 0 ? { __typename: 'Product', id: p.id } : { __typename: 'Product', sku: p.sku },
    );
    reps.push({ __typename: 'Product', sku: 'NOPE-404' });
    let res: GraphQLResponse<Entities> | undefined;
    const statements = await countStatements(subgraph.db, async () => {
      res = await graphql<Entities>(subgraph.url, ENTITIES, { r: reps });
    });
    expect(res?.errors).toBeUndefined();
    expect(res?.data?._entities.map((e) => e?.id ?? null)).toEqual([...sample.map((p) => p.id), null]);
    expect(statements).toBeLessThanOrEqual(2);
  });
});
