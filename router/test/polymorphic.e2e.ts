import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'graphql';
import { composeServices } from '@apollo/composition';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql, startTestSubgraph, type TestSubgraph } from '@shop/common/testing';
import { MEDIA_SCHEMA, THREE_LEVELS, mediaSubgraph } from './fixtures/media.js';
import { startRouter } from './stack.js';

let media: TestSubgraph;
let dir: string;
let router: Awaited<ReturnType<typeof startRouter>>;
let client: Client;

beforeAll(async () => {
  media = await startTestSubgraph(mediaSubgraph);
  const result = composeServices([{ name: 'media', url: media.url, typeDefs: parse(MEDIA_SCHEMA) }]);
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  dir = await mkdtemp(path.join(tmpdir(), 'polymorphic-'));
  const file = path.join(dir, 'supergraph.graphql');
  await writeFile(file, result.supergraphSdl);
  // The default limits: nothing in the environment changes them.
  router = await startRouter(file, {}, undefined, { RATE_LIMIT_MAX: '0' });
  client = createClient({ url: router.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
});
afterAll(async () => {
  await client?.dispose();
  await router?.stop();
  await media?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** One query over graphql-ws: its result, or the errors it was refused with. */
function overWebSocket(query: string, variables: Record<string, unknown>): Promise<{ data?: unknown; errors?: { extensions?: Record<string, unknown> }[] }> {
  return new Promise((resolve) => {
    let result: { data?: unknown; errors?: { extensions?: Record<string, unknown> }[] } = {};
    client.subscribe(
      { query, variables },
      {
        next: (value) => (result = value as typeof result),
        error: (error) => resolve({ errors: Array.isArray(error) ? error : [error] }),
        complete: () => resolve(result),
      },
    );
  });
}

type Item = { id: string; related: { id: string; related: { id: string; title: string }[] }[] };

describe('a three-level polymorphic query under the default limits', () => {
  it('is answered over HTTP and graphql-ws (each item is one type: its cost is the dearest type, not the sum)', async () => {
    const http = await graphql<{ media: Item[] }>(router.url, THREE_LEVELS, { first: 10 });
    expect(http.status).toBe(200);
    expect(http.errors).toBeUndefined();
    expect(http.data?.media).toHaveLength(10);
    expect(http.data?.media[0]).toMatchObject({ id: 'm0', pages: 100, related: [{ id: 'm1', minutes: 91 }, { id: 'm2' }, { id: 'm3' }] });
    expect(http.data?.media[0]?.related[0]?.related[0]).toEqual({ id: 'm2', title: 'Album 2', tracks: 12 });
    const ws = await overWebSocket(THREE_LEVELS, { first: 10 });
    expect(ws.errors).toBeUndefined();
    expect(ws.data).toEqual(http.data);
  });

  it('is still refused with QUERY_TOO_COMPLEX when it asks for ten times as much', async () => {
    const http = await graphql(router.url, THREE_LEVELS, { first: 100 });
    expect(http.status).toBe(400);
    expect(http.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', limit: 5000, actual: 33301 });
    const ws = await overWebSocket(THREE_LEVELS, { first: 100 });
    expect(ws.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', limit: 5000, actual: 33301 });
  });
});
