import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, migrate, openDatabase, serveSubgraph, type Database, type RunningSubgraph } from '@shop/common';
import { ADMIN, graphql, identityHeaders } from '@shop/common/testing';
import { startPrivatePostgres, type PrivatePostgres } from '@shop/common/test-servers';
import { products } from '../src/server.js';

const QUERY = 'query { products(first: 2) { edges { node { sku } } } }';
const CREATE = 'mutation($input: CreateProductInput!) { createProduct(input: $input) { sku } }';
const newProduct = (sku: string) => ({
  sku,
  name: 'Outage Lamp',
  description: '',
  price: { amount: 1999, currency: 'USD' },
  category: 'lighting',
  weightGrams: 800,
});
const admin = identityHeaders('products', ADMIN);

let server: PrivatePostgres;
let db: Database;
const running: Record<'development' | 'production', RunningSubgraph> = {} as never;

beforeAll(async () => {
  server = await startPrivatePostgres();
  db = await openDatabase({ url: await server.createDatabase('products'), name: 'products', poolSize: 4 });
  await migrate(db, products.migrations);
  await products.seed(db);
  const log = createLogger('products', 'silent');
  for (const mode of ['development', 'production'] as const) {
    running[mode] = await serveSubgraph(products, db, { port: 0, host: '127.0.0.1', production: mode === 'production', log });
  }
});
afterAll(async () => {
  for (const subgraph of Object.values(running)) await subgraph.stop();
  await db?.close();
  await server?.stop();
});

async function ready(subgraph: RunningSubgraph): Promise<{ status: number; body: { checks: Record<string, string> } }> {
  const response = await fetch(new URL('/ready', subgraph.http.url));
  return { status: response.status, body: (await response.json()) as { checks: Record<string, string> } };
}

describe('a subgraph whose database goes away', () => {
  it('answers SERVICE_UNAVAILABLE with a retry hint (in development and production), is not ready, and serves again once it is back', async () => {
    for (const subgraph of Object.values(running)) {
      expect((await graphql(subgraph.http.url, QUERY)).errors).toBeUndefined();
      expect((await ready(subgraph)).status).toBe(200);
    }

    await server.kill();
    let sku = 0;
    for (const [mode, subgraph] of Object.entries(running)) {
      const started = performance.now();
      const query = await graphql(subgraph.http.url, QUERY);
      const mutation = await graphql(subgraph.http.url, CREATE, { input: newProduct(`OUT-${++sku}`) }, admin);
      for (const answer of [query, mutation]) {
        expect(answer.status, mode).toBe(200);
        expect(answer.errors, mode).toHaveLength(1);
        const [error] = answer.errors!;
        expect(error!.message, mode).toBe('The products database is unavailable; retry in a few seconds');
        expect(error!.extensions?.code, mode).toBe('SERVICE_UNAVAILABLE');
        expect(error!.extensions?.retryAfterSeconds, mode).toBe(5);
        if (mode === 'production') expect(Object.keys(error!.extensions!).sort()).toEqual(['code', 'retryAfterSeconds']);
      }
      const probe = await ready(subgraph);
      expect(probe.status, mode).toBe(503);
      expect(probe.body.checks.database, mode).toMatch(/^the products database is unavailable/);
      expect(performance.now() - started, mode).toBeLessThan(3_000);
    }

    await server.start();
    for (const [mode, subgraph] of Object.entries(running)) {
      expect((await ready(subgraph)).status, mode).toBe(200);
      expect((await graphql(subgraph.http.url, QUERY)).errors, mode).toBeUndefined();
      const created = await graphql(subgraph.http.url, CREATE, { input: newProduct(`BACK-${mode}`) }, admin);
      expect(created.errors, mode).toBeUndefined();
      expect(created.data, mode).toEqual({ createProduct: { sku: `BACK-${mode}` } });
    }
  });
});
