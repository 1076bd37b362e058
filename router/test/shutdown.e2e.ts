import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parse } from 'graphql';
import { composeServices } from '@apollo/composition';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop, loadSchema, type Database } from '@shop/common';
import { graphql, startTestSubgraph, type TestSubgraph } from '@shop/common/testing';
import { products } from '@shop/products';
import { TICKS_SCHEMA, tickState, ticksSubgraph } from './fixtures/ticks.js';
import { startRouter } from './stack.js';
import { startUpstream, type Upstream } from './upstream.js';

const shop = demoShop();
const PRODUCT = 'query($p: ID!) { product(id: $p) { id sku name } }';
let dir: string;
let file: string;
let productsSubgraph: TestSubgraph;
let ticks: TestSubgraph;

beforeAll(async () => {
  [productsSubgraph, ticks] = await Promise.all([startTestSubgraph(products, { seed: true }), startTestSubgraph(ticksSubgraph)]);
});
afterAll(async () => {
  await productsSubgraph?.close();
  await ticks?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A supergraph of products (behind `productsUrl`) and the ticks subgraph, which has a subscription. */
async function supergraphFile(productsUrl: string): Promise<string> {
  const result = composeServices([
    { name: 'products', url: productsUrl, typeDefs: parse(loadSchema(new URL('../../subgraphs/products/src/schema.graphql', import.meta.url))) },
    { name: 'ticks', url: ticks.url, typeDefs: parse(TICKS_SCHEMA) },
  ]);
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  dir ??= await mkdtemp(path.join(tmpdir(), 'shutdown-'));
  file = path.join(dir, 'supergraph.graphql');
  await writeFile(file, result.supergraphSdl);
  return file;
}

/** Resolves with the error code of a TCP connection attempt, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** A POST whose body is sent in two halves: the second when the test calls finish(). */
function slowRequest(port: number, body: string) {
  const half = Math.floor(body.length / 2);
  let finish!: () => void;
  let started!: () => void;
  const startedPromise = new Promise<void>((resolve) => (started = resolve));
  const answer = new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown }));
      },
    );
    req.on('error', reject);
    req.flushHeaders();
    req.write(body.slice(0, half), () => started());
    finish = () => req.end(body.slice(half));
  });
  return { answer, started: startedPromise, finish: () => finish() };
}

/** The expected answer for the i-th demo product. */
const expected = (i: number) => {
  const p = shop.products[i]!;
  return { product: { id: p.id, sku: p.sku, name: p.name } };
};

describe('graceful shutdown', () => {
  let proxy: Upstream;
  afterAll(() => proxy?.close());

  it('router: finishes every request in flight, refuses new connections, closes WebSockets with 1001', async () => {
    // Products answers only when the test says so, so that every request is in flight when the stop begins.
    proxy = await startUpstream(productsSubgraph.url);
    const router = await startRouter(await supergraphFile(proxy.url), { products: proxy.url, ticks: ticks.url });
    const port = router.http.port;

    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      const client = createClient({
        url: `ws://127.0.0.1:${port}/graphql`,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        on: {
          closed: (event) => {
            const { code, reason } = event as { code: number; reason: string };
            resolve({ code, reason });
          },
        },
      });
      client.subscribe({ query: 'subscription { ticks(userId: "u1", count: 100000) { n } }' }, { next: () => undefined, error: () => undefined, complete: () => undefined });
    });
    // The subscription is open end to end once the ticks subgraph is producing for it.
    while (tickState.open === 0) await delay(10);

    const clients = 200;
    proxy.hold();
    const answers = Array.from({ length: clients }, (_, i) => graphql(router.url, PRODUCT, { p: shop.products[i]!.id }));
    await proxy.arrived(clients);
    // One more client is still sending its body when the stop begins.
    const slow = slowRequest(port, JSON.stringify({ query: PRODUCT, variables: { p: shop.products[clients]!.id } }));
    await slow.started;

    const stopping = router.stop();
    // The WebSocket client is told the router is going away; no new connection gets in.
    expect(await closed).toEqual({ code: 1001, reason: 'Router shutting down' });
    expect(router.http.server.listening).toBe(false);
    expect(await tryConnect(port)).toBe('ECONNREFUSED');

    slow.finish();
    proxy.release();
    expect(await slow.answer).toEqual({ status: 200, body: { data: expected(clients) } });
    const results = await Promise.all(answers);
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: clients }, () => 200));
    expect(results.filter((r) => r.errors)).toEqual([]);
    expect(results.map((r) => r.data)).toEqual(Array.from({ length: clients }, (_, i) => expected(i)));
    await stopping;
    // The upstream subscription went with the client's.
    while (tickState.open > 0) await delay(10);
  });

  it('subgraph: finishes every request in flight and refuses new connections', async () => {
    // Hold the subgraph's SQL until its stop has begun.
    const db: Database = productsSubgraph.db;
    const query = db.query.bind(db);
    let waiting = 0;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    db.query = (async (text: string, params?: readonly unknown[]) => {
      waiting++;
      await gate;
      return query(text, params);
    }) as Database['query'];
    try {
      const clients = 100;
      const answers = Array.from({ length: clients }, (_, i) => graphql(productsSubgraph.url, PRODUCT, { p: shop.products[i]!.id }));
      while (waiting < clients) await delay(10);

      const stopping = productsSubgraph.stop();
      while (productsSubgraph.http.server.listening) await delay(5);
      expect(await tryConnect(productsSubgraph.http.port)).toBe('ECONNREFUSED');

      open();
      const results = await Promise.all(answers);
      expect(results.map((r) => r.status)).toEqual(Array.from({ length: clients }, () => 200));
      expect(results.filter((r) => r.errors)).toEqual([]);
      expect(results.map((r) => r.data)).toEqual(Array.from({ length: clients }, (_, i) => expected(i)));
      await stopping;
    } finally {
      open();
      db.query = query;
    }
  });
});
