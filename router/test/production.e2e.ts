import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BaseContext } from '@apollo/server';
import { createLogger, demoShop, migrate, serveSubgraph, type SubgraphDefinition, type SubgraphRuntime } from '@shop/common';
import { createTestDatabase, graphql, type TestDatabase } from '@shop/common/testing';
import { products } from '@shop/products';
import { inventory } from '@shop/inventory';
import { COMMITTED_SUPERGRAPH, startRouter } from './stack.js';

/** A seeded subgraph on a loopback port, in production or development mode. */
async function startSubgraph<TContext extends BaseContext, TRuntime extends SubgraphRuntime>(
  definition: SubgraphDefinition<TContext, TRuntime>,
  production: boolean,
): Promise<{ url: string; database: TestDatabase; close(): Promise<void> }> {
  const database = await createTestDatabase(`${definition.name}_${production ? 'prod' : 'dev'}`);
  await migrate(database.db, definition.migrations);
  await definition.seed(database.db);
  const running = await serveSubgraph(definition, database.db, {
    port: 0,
    host: '127.0.0.1',
    production,
    log: createLogger(definition.name, 'silent'),
  });
  return {
    url: running.http.url,
    database,
    async close() {
      await running.stop();
      await database.drop();
    },
  };
}

// Secrets production insists on; long enough to be accepted, used by nothing these tests call.
const PRODUCTION_ENV = {
  NODE_ENV: 'production',
  RATE_LIMIT_MAX: '0',
  IDENTITY_SECRET: 'production-e2e-identity-secret-0123456789',
  JWT_SECRET: 'production-e2e-jwt-secret-0123456789abcdef',
};
// Where nothing listens: no test here needs users or orders, and none may reach a real service by accident.
const NOWHERE = 'http://127.0.0.1:1/graphql';

const shop = demoShop();
let productsProd: Awaited<ReturnType<typeof startSubgraph>>;
// Inventory runs in development mode: the router must mask what a misconfigured subgraph lets through.
let inventoryDev: Awaited<ReturnType<typeof startSubgraph>>;
let router: Awaited<ReturnType<typeof startRouter>>;
let devRouter: Awaited<ReturnType<typeof startRouter>>;

beforeAll(async () => {
  [productsProd, inventoryDev] = await Promise.all([startSubgraph(products, true), startSubgraph(inventory, false)]);
  const urls = { products: productsProd.url, inventory: inventoryDev.url, users: NOWHERE, orders: NOWHERE };
  router = await startRouter(COMMITTED_SUPERGRAPH, urls, createLogger('router', 'silent'), PRODUCTION_ENV);
  devRouter = await startRouter(COMMITTED_SUPERGRAPH, urls, createLogger('router', 'silent'), { RATE_LIMIT_MAX: '0' });
});
afterAll(async () => {
  await router?.stop();
  await devRouter?.stop();
  await productsProd?.close();
  await inventoryDev?.close();
});

/** Whatever a client must never see in production: stack frames, SQL, table names, internal addresses. */
function expectNoInternals(body: { errors?: { message: string; extensions?: unknown }[] }): void {
  // Messages and extensions (locations and paths are the client's own query).
  const text = JSON.stringify(body.errors?.map(({ message, extensions }) => ({ message, extensions })));
  expect(text).not.toMatch(/stacktrace|\bat .+\.(ts|js):\d+|node_modules/);
  expect(text).not.toMatch(/\b(SELECT|FROM|relation|column|syntax error|pglite|postgres)\b/i);
  expect(text).not.toMatch(/127\.0\.0\.1|localhost|ECONNREFUSED|:\d{4,5}\b/);
}

describe('a router and subgraphs in production mode', () => {
  it('refuses introspection with GRAPHQL_VALIDATION_FAILED, on the router and on a subgraph', async () => {
    for (const query of ['{ __schema { types { name } } }', '{ __type(name: "Product") { fields { name } } }']) {
      for (const url of [router.url, productsProd.url]) {
        const res = await graphql(url, query);
        expect(res.status).toBe(400);
        expect(res.data).toBeUndefined();
        expect(res.errors?.[0]?.extensions).toEqual({ code: 'GRAPHQL_VALIDATION_FAILED', validationErrorCode: 'INTROSPECTION_DISABLED' });
        expect(res.errors?.[0]?.message).toMatch(/introspection is not allowed/);
        expectNoInternals(res);
      }
    }
    // The development router answers the same query: the refusal is production's doing.
    const dev = await graphql<{ __schema: { types: unknown[] } }>(devRouter.url, '{ __schema { types { name } } }');
    expect(dev.data?.__schema.types.length).toBeGreaterThan(10);
    // __typename is not introspection.
    expect((await graphql(router.url, '{ __typename }')).data).toEqual({ __typename: 'Query' });
  });

  it('shows no Sandbox landing page to a browser', async () => {
    const open = (url: string) => fetch(url, { headers: { accept: 'text/html' } });
    const prod = await open(router.url);
    const body = await prod.text();
    // Without the landing page a browser's GET is an ordinary GraphQL request, refused by CSRF prevention.
    expect(prod.status).toBe(400);
    expect(prod.headers.get('content-type') ?? '').toMatch(/application\/json/);
    expect(body).not.toMatch(/<html|<!DOCTYPE|sandbox|embeddable/i);
    const direct = await open(productsProd.url);
    expect(await direct.text()).not.toMatch(/<html|<!DOCTYPE|sandbox|embeddable/i);
    // The development router serves it at the same address.
    const dev = await open(devRouter.url);
    expect(dev.headers.get('content-type')).toMatch(/text\/html/);
    expect(await dev.text()).toMatch(/sandbox/i);
  });

  it('gives no hints about the schema in validation errors', async () => {
    const res = await graphql(router.url, '{ products(first: 1) { edges { node { nme } } } }');
    expect(res.status).toBe(400);
    expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.errors?.[0]?.message).not.toMatch(/Did you mean/);
    const dev = await graphql(devRouter.url, '{ products(first: 1) { edges { node { nme } } } }');
    expect(dev.errors?.[0]?.message).toMatch(/Did you mean "name"/);
  });

  it('lets deliberate client errors through with their code, message and field, without a stack', async () => {
    const res = await graphql(router.url, '{ products(first: 1000) { edges { node { name } } } }');
    expect(res.errors).toHaveLength(1);
    const [error] = res.errors!;
    expect(error!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(error!.message).toMatch(/first/);
    expect(error!.extensions).not.toHaveProperty('stacktrace');
    expectNoInternals(res);
    // A product that does not exist is null, not an error.
    expect((await graphql(router.url, '{ product(id: "00000000-0000-0000-0000-000000000000") { name } }')).data).toEqual({ product: null });
  });

  it('says which service is unreachable without its address', async () => {
    const cut = await startRouter(
      COMMITTED_SUPERGRAPH,
      { products: productsProd.url, inventory: NOWHERE, users: NOWHERE, orders: NOWHERE },
      createLogger('router', 'silent'),
      PRODUCTION_ENV,
    );
    try {
      const res = await graphql(cut.url, '{ products(first: 1) { edges { node { name inStock } } } }');
      expect(res.status).toBe(200);
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'inventory' });
      expect(res.errors?.[0]?.message).toMatch(/inventory service/);
      expectNoInternals(res);
    } finally {
      await cut.stop();
    }
  });

  it('masks an internal error of a development-mode subgraph (SQL, stack) behind the router', async () => {
    const product = shop.products[2]!;
    const query = '{ product(id: "' + product.id + '") { name stock } }';
    const before = await graphql(router.url, query);
    expect(before.errors).toBeUndefined();
    // The subgraph's table goes missing: its own answer shows SQL and a stack, as development mode does.
    await inventoryDev.database.db.query('ALTER TABLE stock RENAME TO stock_gone');
    const leaky = await graphql(inventoryDev.url, `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Product { stock } } }`, {
      r: [{ __typename: 'Product', id: product.id }],
    });
    expect(JSON.stringify(leaky)).toMatch(/stock/);
    expect(leaky.errors?.[0]?.extensions).toHaveProperty('stacktrace');

    const res = await graphql(router.url, query);
    expect(res.status).toBe(200);
    expect(res.errors?.length).toBeGreaterThan(0);
    for (const error of res.errors!) {
      expect(error.message).toBe('Internal server error');
      expect(error.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
    }
    expectNoInternals(res);
    expect(JSON.stringify(res)).not.toMatch(/stock_gone/);
    expect(res.errors?.[0]?.path).toEqual(['product', 'stock']);
    // The development router passes the details on, for debugging.
    const dev = await graphql(devRouter.url, query);
    expect(JSON.stringify(dev)).toMatch(/relation/);
  });

  it('masks a production subgraph whose database is gone, on the router and on the subgraph itself', async () => {
    await productsProd.database.db.close();
    const query = '{ products(first: 2) { edges { node { name } } } }';
    for (const url of [router.url, productsProd.url]) {
      const res = await graphql(url, query);
      expect(res.errors?.length).toBeGreaterThan(0);
      for (const error of res.errors!) {
        expect(error.message).toBe('Internal server error');
        expect(error.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
        expect(error.extensions).not.toHaveProperty('stacktrace');
      }
      expectNoInternals(res);
    }
  });
});
