import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '@shop/common/testing';
import { OperationLabels } from '../src/metrics.js';
import { queryHash } from '../src/safelist.js';
import { readRouterConfig } from '../src/config.js';
import { COMMITTED_SUPERGRAPH, startRouter } from './stack.js';

type StartedRouter = Awaited<ReturnType<typeof startRouter>>;

/** The values of the `operation` label in the router's operation counter. */
function operationLabels(text: string): Set<string> {
  return new Set([...text.matchAll(/^shop_router_graphql_operations_total\{operation="([^"]*)"/gm)].map((m) => m[1]!));
}

const scrape = async (router: StartedRouter) => (await fetch(router.metricsUrl)).text();

describe('router metrics port', () => {
  let router: StartedRouter;
  // No subgraph is called: `__typename` at the root is answered by the router itself.
  beforeAll(async () => {
    router = await startRouter(COMMITTED_SUPERGRAPH, {}, undefined, { RATE_LIMIT_MAX: '0' });
  });
  afterAll(() => router?.stop());

  it('is a listener of its own: the client port answers 404 at /metrics', async () => {
    const client = await fetch(new URL('/metrics', router.url));
    expect(client.status).toBe(404);
    expect(await client.text()).not.toContain('shop_router_');
    expect(new URL(router.metricsUrl).port).not.toBe(new URL(router.url).port);

    const metrics = await fetch(router.metricsUrl);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    const text = await metrics.text();
    expect(text).toContain('# TYPE shop_router_graphql_operations_total counter');
    expect(text).toContain('# TYPE shop_router_graphql_operation_duration_seconds histogram');
    expect(text).toContain('# TYPE shop_router_subgraph_fetch_duration_seconds histogram');
    expect(text).toContain('shop_router_graphql_subscriptions_open 0');
    // The router's own names all carry the prefix (Node's process_* and nodejs_* keep their standard names).
    const names = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const unprefixed = [...names].filter((n) => !n.startsWith('shop_router_') && !n.startsWith('process_') && !n.startsWith('nodejs_'));
    expect(unprefixed).toEqual([]);

    // The metrics port serves metrics only: no GraphQL, no probes.
    expect((await fetch(new URL('/graphql', router.metricsUrl))).status).toBe(404);
    expect((await fetch(new URL('/health', router.metricsUrl))).status).toBe(404);
  });

  it('bounds the operation label: 150 distinct names make at most 101 values, the rest counted as other', async () => {
    for (let i = 0; i < 150; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) => graphql(router.url, `query Op${String(i + j).padStart(3, '0')} { __typename }`)),
      );
    }
    await graphql(router.url, '{ __typename }');
    const text = await scrape(router);
    const labels = operationLabels(text);
    labels.delete('anonymous');
    expect(labels.size).toBeLessThanOrEqual(101);
    expect(labels.has('other')).toBe(true);
    // 150 operations in all: those named by a label of their own, and the rest under `other`.
    const counts = [...text.matchAll(/^shop_router_graphql_operations_total\{operation="(Op\d+|other)"[^}]*\} (\d+)$/gm)];
    expect(counts.reduce((sum, m) => sum + Number(m[2]), 0)).toBe(150);
    expect(text).toMatch(/^shop_router_graphql_operations_total\{operation="anonymous",type="query",outcome="ok"\} 1$/m);
  });
});

describe('router metrics in safelist mode', () => {
  const REGISTERED = 'query Registered { __typename }';
  let dir: string;
  let router: StartedRouter;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'shop-metrics-safelist-'));
    const manifest = path.join(dir, 'manifest.json');
    await writeFile(
      manifest,
      JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations: [{ id: queryHash(REGISTERED), body: REGISTERED }] }),
    );
    router = await startRouter(COMMITTED_SUPERGRAPH, {}, undefined, { RATE_LIMIT_MAX: '0', PERSISTED_QUERIES_SAFELIST: manifest });
  });
  afterAll(async () => {
    await router?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('labels only the names of registered operations; a refused one is other', async () => {
    expect((await graphql(router.url, REGISTERED)).status).toBe(200);
    expect((await graphql(router.url, 'query Unregistered { __typename }')).status).toBe(400);
    const labels = operationLabels(await scrape(router));
    expect(labels.has('Registered')).toBe(true);
    expect(labels.has('Unregistered')).toBe(false);
    expect(labels.has('other')).toBe(true);
  });
});

describe('OperationLabels', () => {
  it('keeps the first names up to its bound, then answers other; no name is anonymous', () => {
    const labels = new OperationLabels(2);
    expect(['A', 'B', 'C', 'A', null, undefined, ''].map((n) => labels.label(n))).toEqual(['A', 'B', 'other', 'A', 'anonymous', 'anonymous', 'anonymous']);
    const fixed = new OperationLabels(100, ['Known']);
    expect([fixed.label('Known'), fixed.label('Unknown')]).toEqual(['Known', 'other']);
  });
});

describe('metrics settings', () => {
  it('default to 127.0.0.1:9464, and take METRICS_PORT (0: any free port) and METRICS_HOST', () => {
    expect(readRouterConfig([], {})).toMatchObject({ metricsPort: 9464, metricsHost: '127.0.0.1' });
    expect(readRouterConfig([], { METRICS_PORT: '0', METRICS_HOST: '0.0.0.0' })).toMatchObject({ metricsPort: 0, metricsHost: '0.0.0.0' });
    expect(() => readRouterConfig([], { METRICS_PORT: '70000' })).toThrow(/METRICS_PORT must be an integer between 0 and 65535/);
  });
});
