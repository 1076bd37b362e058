import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
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

const root = fileURLToPath(new URL('../..', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createTcpServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs an entry point as `npm start` does, in development mode (where Apollo Server would install
 * signal handlers of its own), and resolves once it answers /health.
 */
async function spawnService(entry: string, env: NodeJS.ProcessEnv) {
  const port = await freePort();
  const output: string[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env: { PATH: process.env.PATH, NODE_ENV: 'development', LOG_LEVEL: 'warn', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${entry} exited: ${output.join('')}`);
    if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${entry} did not start: ${output.join('')}`);
    }
    await delay(200);
  }
  return { port, url: `http://127.0.0.1:${port}/graphql`, child, output, exited };
}

/** Resolves once nothing accepts connections on the port any more. */
async function refusing(port: number): Promise<void> {
  while ((await tryConnect(port)) !== 'ECONNREFUSED') await delay(10);
}

/** The expected answer for the i-th demo product. */
const expected = (i: number) => {
  const p = shop.products[i]!;
  return { product: { id: p.id, sku: p.sku, name: p.name } };
};

describe('graceful shutdown', () => {
  // Products behind a proxy that answers only when the test says so, so that requests are in flight when a stop begins.
  let proxy: Upstream;
  beforeAll(async () => {
    proxy = await startUpstream(productsSubgraph.url);
  });
  afterAll(() => proxy?.close());

  it('router: finishes every request in flight, refuses new connections, closes WebSockets with 1001', async () => {
    const router = await startRouter(await supergraphFile(proxy.url), { products: proxy.url });
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
    const before = proxy.arrivals.length;
    proxy.hold();
    const answers = Array.from({ length: clients }, (_, i) => graphql(router.url, PRODUCT, { p: shop.products[i]!.id }));
    await proxy.arrived(before + clients);
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

  it('router process: SIGTERM answers the requests in flight in full, then exits 0', async () => {
    proxy.release();
    const service = await spawnService('router/src/main.ts', {
      SUPERGRAPH_PATH: await supergraphFile(proxy.url),
      PRODUCTS_SUBGRAPH_URL: proxy.url,
      TICKS_SUBGRAPH_URL: ticks.url,
      METRICS_PORT: '0',
    });
    try {
      const clients = 50;
      const before = proxy.arrivals.length;
      proxy.hold();
      const answers = Array.from({ length: clients }, (_, i) => graphql(service.url, PRODUCT, { p: shop.products[i]!.id }));
      await proxy.arrived(before + clients);
      const slow = slowRequest(service.port, JSON.stringify({ query: PRODUCT, variables: { p: shop.products[clients]!.id } }));
      await slow.started;

      service.child.kill('SIGTERM');
      await refusing(service.port);
      slow.finish();
      proxy.release();
      expect(await slow.answer).toEqual({ status: 200, body: { data: expected(clients) } });
      const results = await Promise.all(answers);
      expect(results.filter((r) => r.status !== 200 || r.errors)).toEqual([]);
      expect(results.map((r) => r.data)).toEqual(Array.from({ length: clients }, (_, i) => expected(i)));
      expect(await service.exited).toBe(0);
    } finally {
      proxy.release();
      service.child.kill('SIGKILL');
    }
  }, 120_000);

  it('subgraph process: SIGTERM answers a request still arriving, then exits 0', async () => {
    const service = await spawnService('subgraphs/products/src/main.ts', {
      PRODUCTS_DATA_DIR: 'memory://',
      SEED_DEMO_DATA: 'true',
    });
    try {
      const slow = slowRequest(service.port, JSON.stringify({ query: PRODUCT, variables: { p: shop.products[3]!.id } }));
      await slow.started;
      service.child.kill('SIGTERM');
      await refusing(service.port);
      slow.finish();
      expect(await slow.answer).toEqual({ status: 200, body: { data: expected(3) } });
      expect(await service.exited).toBe(0);
    } finally {
      service.child.kill('SIGKILL');
    }
  }, 120_000);

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
