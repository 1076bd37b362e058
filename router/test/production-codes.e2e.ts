import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'graphql';
import { composeServices } from '@apollo/composition';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, migrate, serveSubgraph } from '@shop/common';
import { createTestDatabase, createTestRedis, graphql, type TestDatabase, type TestRedis } from '@shop/common/testing';
import { routerPublicCodes } from '../src/error-codes.js';
import { queryHash } from '../src/safelist.js';
import { CODES_SCHEMA, codesSubgraph } from './fixtures/codes.js';
import { startRouter } from './stack.js';

const PRODUCTION_ENV = {
  NODE_ENV: 'production',
  IDENTITY_SECRET: 'production-codes-identity-secret-0123456789',
  JWT_SECRET: 'production-codes-jwt-secret-0123456789abcdef',
};
const REGISTERED = 'query Registered { node { id } }';

let database: TestDatabase;
let redis: TestRedis;
let dir: string;
let stopSubgraph: () => Promise<void>;
/** Production routers: plain (PUBLIC_ERROR_CODES=CUSTOM_CODE), in safelist mode, and with a rate limit of one request. */
let router: Awaited<ReturnType<typeof startRouter>>;
let safelisted: Awaited<ReturnType<typeof startRouter>>;
let limited: Awaited<ReturnType<typeof startRouter>>;
const clients: Client[] = [];

beforeAll(async () => {
  database = await createTestDatabase('codes');
  await migrate(database.db, codesSubgraph.migrations);
  const running = await serveSubgraph(codesSubgraph, database.db, { port: 0, host: '127.0.0.1', production: true, log: createLogger('codes', 'silent') });
  stopSubgraph = () => running.stop();
  const result = composeServices([{ name: 'codes', url: running.http.url, typeDefs: parse(CODES_SCHEMA) }]);
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  dir = await mkdtemp(path.join(tmpdir(), 'production-codes-'));
  const supergraph = path.join(dir, 'supergraph.graphql');
  await writeFile(supergraph, result.supergraphSdl);
  const manifest = path.join(dir, 'manifest.json');
  await writeFile(
    manifest,
    JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations: [{ id: queryHash(REGISTERED), body: REGISTERED }] }),
  );
  redis = await createTestRedis('codes');
  const env = { ...PRODUCTION_ENV, REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix };
  [router, safelisted, limited] = await Promise.all([
    startRouter(supergraph, {}, undefined, { ...env, RATE_LIMIT_MAX: '0', PUBLIC_ERROR_CODES: 'CUSTOM_CODE' }),
    startRouter(supergraph, {}, undefined, { ...env, RATE_LIMIT_MAX: '0', PERSISTED_QUERIES_SAFELIST: manifest }),
    startRouter(supergraph, {}, undefined, { ...env, RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW_MS: '60000' }),
  ]);
}, 120_000);
afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await Promise.all([router?.stop(), safelisted?.stop(), limited?.stop()]);
  await stopSubgraph?.();
  await database?.drop();
  await redis?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

type Body = { errors?: { message: string; extensions?: Record<string, unknown> }[] };

async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Body }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, body: (await res.json()) as Body };
}

function overWebSocket(url: string, query: string): Promise<Body> {
  const client = createClient({ url: url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
  clients.push(client);
  return new Promise((resolve) => {
    client.subscribe({ query }, { next: () => undefined, error: (error) => resolve({ errors: error as Body['errors'] }), complete: () => resolve({}) });
  });
}

/** The code of the only error, checking that production shows no stack. */
function codeOf(body: Body): unknown {
  expect(body.errors).toHaveLength(1);
  expect(body.errors?.[0]?.extensions).not.toHaveProperty('stacktrace');
  return body.errors?.[0]?.extensions?.code;
}

describe('public error codes in production', () => {
  it('keeps every public code a subgraph answers with, and masks any other', async () => {
    const codes = routerPublicCodes(['CUSTOM_CODE']);
    expect(codes).toEqual(expect.arrayContaining(['OPERATION_NOT_IN_SAFELIST', 'RATE_LIMITED', 'SERVICE_UNAVAILABLE', 'INVALID_TRANSITION', 'CONFLICT', 'SUBGRAPH_UNAVAILABLE']));
    expect(codes).not.toContain('INTERNAL_SERVER_ERROR');
    for (const code of codes) {
      const res = await graphql(router.url, 'query($c: String!) { fail(code: $c) }', { c: code });
      expect({ code, got: codeOf(res), message: res.errors?.[0]?.message }).toEqual({ code, got: code, message: `failed with ${code}` });
    }
    const other = await graphql(router.url, 'query($c: String!) { fail(code: $c) }', { c: 'SOME_LIBRARY_CODE' });
    expect(other.errors?.[0]).toEqual({ message: 'Internal server error', path: ['fail'], extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  });

  it('keeps the codes of the router own refusals, one request each', async () => {
    const deep = `{ node { ${'children { '.repeat(12)}id${' }'.repeat(12)} } }`;
    const expensive = '{ node { children(first: 100) { children(first: 100) { id } } } }';
    const aliases = `{ node { ${Array.from({ length: 31 }, (_, i) => `a${i}: id`).join(' ')} } }`;
    const roots = `{ ${Array.from({ length: 11 }, (_, i) => `r${i}: __typename`).join(' ')} }`;
    const tokens = `{ node { ${'id '.repeat(5000)} } }`;
    const cases: [string, Promise<{ status: number; body: Body }>][] = [
      ['QUERY_TOO_DEEP', post(router.url, JSON.stringify({ query: deep }))],
      ['QUERY_TOO_COMPLEX', post(router.url, JSON.stringify({ query: expensive }))],
      ['TOO_MANY_ALIASES', post(router.url, JSON.stringify({ query: aliases }))],
      ['TOO_MANY_ROOT_FIELDS', post(router.url, JSON.stringify({ query: roots }))],
      ['TOO_MANY_TOKENS', post(router.url, JSON.stringify({ query: tokens }))],
      ['GRAPHQL_PARSE_FAILED', post(router.url, JSON.stringify({ query: '{ node {' }))],
      ['GRAPHQL_VALIDATION_FAILED', post(router.url, JSON.stringify({ query: '{ nothing }' }))],
      ['BAD_USER_INPUT', post(router.url, JSON.stringify({ query: 'query($c: String!) { fail(code: $c) }', variables: { c: 5 } }))],
      ['OPERATION_RESOLUTION_FAILURE', post(router.url, JSON.stringify({ query: 'query A { node { id } }', operationName: 'B' }))],
      ['PERSISTED_QUERY_NOT_FOUND', post(router.url, JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: 'f'.repeat(64) } } }))],
      ['BAD_REQUEST', post(router.url, '{"query": ')],
      ['BAD_REQUEST', post(router.url, JSON.stringify({ query: '{ node { id } }', extensions: { persistedQuery: { version: 1, sha256Hash: 'abc' } } }))],
      ['PAYLOAD_TOO_LARGE', post(router.url, JSON.stringify({ query: `# ${'x'.repeat(1_100_000)}\n{ node { id } }` }))],
      ['UNAUTHENTICATED', post(router.url, JSON.stringify({ query: '{ node { id } }' }), { authorization: 'Bearer not-a-token' })],
      ['OPERATION_NOT_IN_SAFELIST', post(safelisted.url, JSON.stringify({ query: '{ node { id } }' }))],
    ];
    for (const [code, pending] of cases) {
      const { status, body } = await pending;
      // A persisted query the router does not know is answered 200 by protocol: the client then sends the text.
      const expected = code === 'PERSISTED_QUERY_NOT_FOUND' ? status === 200 : status >= 400 && status < 500;
      expect({ code, status: expected, got: codeOf(body) }).toEqual({ code, status: true, got: code });
    }
    // The rate limit: the second request of a client.
    expect((await post(limited.url, JSON.stringify({ query: '{ node { id } }' }))).status).toBe(200);
    const over = await post(limited.url, JSON.stringify({ query: '{ node { id } }' }));
    expect({ status: over.status, code: codeOf(over.body) }).toEqual({ status: 429, code: 'RATE_LIMITED' });
    // The registered operation still runs in safelist mode.
    expect((await post(safelisted.url, JSON.stringify({ query: REGISTERED }))).body).toEqual({ data: { node: { id: 'n' } } });
  });

  it('keeps OPERATION_NOT_IN_SAFELIST and gives no schema hints over graphql-ws', async () => {
    expect((await overWebSocket(safelisted.url, '{ node { id } }')).errors?.[0]?.extensions?.code).toBe('OPERATION_NOT_IN_SAFELIST');
    const hinted = await overWebSocket(router.url, '{ nod { id } }');
    expect(hinted.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(hinted.errors?.[0]?.message).toBe('Cannot query field "nod" on type "Query".');
    const http = await graphql(router.url, '{ nod { id } }');
    expect(http.errors?.[0]?.message).toBe('Cannot query field "nod" on type "Query".');
  });
});
