import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { createLogger, demoShop, ConfigError } from '@shop/common';
import { startTestSubgraph, type TestSubgraph } from '@shop/common/testing';
import { products } from '@shop/products';
import { readRouterConfig } from '../src/config.js';
import { createRouter } from '../src/server.js';
import { queryHash } from '../src/safelist.js';
import { COMMITTED_SUPERGRAPH, startRouter } from './stack.js';

const shop = demoShop();
const PRODUCT_NAME = 'query ProductName($id: ID!) { product(id: $id) { name } }';
const UNREGISTERED = 'query ProductSku($id: ID!) { product(id: $id) { sku } }';
const product = shop.products[7]!;

let dir: string;
let manifestPath: string;
let subgraph: TestSubgraph;
let router: Awaited<ReturnType<typeof startRouter>>;

async function post(body: Record<string, unknown>) {
  const res = await fetch(router.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] } };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shop-safelist-'));
  manifestPath = path.join(dir, 'persisted-query-manifest.json');
  const manifest = {
    format: 'apollo-persisted-query-manifest',
    version: 1,
    operations: [{ id: queryHash(PRODUCT_NAME), name: 'ProductName', type: 'query', body: PRODUCT_NAME }],
  };
  await writeFile(manifestPath, JSON.stringify(manifest));
  subgraph = await startTestSubgraph(products, { seed: true });
  router = await startRouter(COMMITTED_SUPERGRAPH, { products: subgraph.url }, undefined, { PERSISTED_QUERIES_SAFELIST: manifestPath });
});
afterAll(async () => {
  await router?.stop();
  await subgraph?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('safelist mode (PERSISTED_QUERIES_SAFELIST)', () => {
  it('runs a registered operation sent as text', async () => {
    const res = await post({ query: PRODUCT_NAME, variables: { id: product.id } });
    expect(res).toEqual({ status: 200, body: { data: { product: { name: product.name } } } });
  });

  it('runs a registered operation sent by its id alone, without registering it first', async () => {
    const res = await post({
      variables: { id: product.id },
      extensions: { persistedQuery: { version: 1, sha256Hash: queryHash(PRODUCT_NAME) } },
    });
    expect(res).toEqual({ status: 200, body: { data: { product: { name: product.name } } } });
  });

  it('refuses any other operation before a subgraph is called', async () => {
    const before = subgraph.db.statementCount;
    const res = await post({ query: UNREGISTERED, variables: { id: product.id } });
    expect(res.status).toBe(400);
    expect(res.body.data).toBeUndefined();
    expect(res.body.errors).toEqual([
      expect.objectContaining({
        message: expect.stringContaining('not in the safelist'),
        extensions: expect.objectContaining({ code: 'OPERATION_NOT_IN_SAFELIST' }),
      }),
    ]);
    expect(subgraph.db.statementCount).toBe(before);
  });

  it('does not let a client register a new operation as an automatic persisted query', async () => {
    const extensions = { persistedQuery: { version: 1, sha256Hash: queryHash(UNREGISTERED) } };
    const register = await post({ query: UNREGISTERED, variables: { id: product.id }, extensions });
    expect(register.body.errors?.[0]?.extensions?.code).toBe('OPERATION_NOT_IN_SAFELIST');
    const byHash = await post({ variables: { id: product.id }, extensions });
    expect(byHash.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
  });

  it('applies to operations sent over graphql-ws too', async () => {
    const client = createClient({ url: router.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
    try {
      const run = (query: string, id = product.id) =>
        new Promise<{ data?: unknown; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }>((resolve, reject) => {
          let result: { data?: unknown } | undefined;
          client.subscribe(
            { query, variables: { id } },
            {
              next: (value) => (result = value as { data?: unknown }),
              error: (errors) => resolve({ errors: errors as { message: string; extensions?: Record<string, unknown> }[] }),
              complete: () => (result ? resolve(result) : reject(new Error('completed without a result'))),
            },
          );
        });
      expect(await run(PRODUCT_NAME)).toEqual({ data: { product: { name: product.name } } });
      // An operation answering with errors keeps the socket open (its errors are sent, not thrown).
      const invalid = await run(PRODUCT_NAME, 'not-an-id');
      expect(invalid).toMatchObject({ errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) })] });
      const refused = await run(UNREGISTERED);
      expect(refused.errors?.[0]?.extensions?.code).toBe('OPERATION_NOT_IN_SAFELIST');
    } finally {
      await client.dispose();
    }
  });

  it('refuses to start on a manifest whose ids do not match their operations', async () => {
    const bad = path.join(dir, 'bad-manifest.json');
    await writeFile(
      bad,
      JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations: [{ id: queryHash('{ a }'), body: PRODUCT_NAME }] }),
    );
    const config = readRouterConfig([], { SUPERGRAPH_PATH: COMMITTED_SUPERGRAPH, PERSISTED_QUERIES_SAFELIST: bad });
    await expect(createRouter(config, createLogger('router', 'silent'))).rejects.toThrow(ConfigError);
  });
});
