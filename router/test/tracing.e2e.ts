import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, demoShop, startTelemetry, tracingEnabled, type Telemetry } from '@shop/common';
import { graphql } from '@shop/common/testing';
import { COMMITTED_SUPERGRAPH, startStack, type Stack } from './stack.js';

/** A span as the collector received it, ids in hex. */
interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpExport {
  resourceSpans: {
    resource: { attributes: OtlpAttribute[] };
    scopeSpans: {
      spans: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: OtlpAttribute[];
      }[];
    }[];
  }[];
}

// OTLP/JSON carries ids as hex; accept base64 as well (the protobuf-JSON mapping) so a change shows up as a
// readable mismatch instead of a silent one.
const hex = (id: string | undefined) => (!id ? '' : /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex'));
const valueOf = (v: OtlpValue) => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue));
const attributesOf = (list: OtlpAttribute[] = []) => Object.fromEntries(list.map((a) => [a.key, valueOf(a.value)]));

/** A loopback OTLP/HTTP collector: records what the exporter POSTs to /v1/traces. */
async function startCollector(): Promise<{ url: string; spans: ReceivedSpan[]; contentTypes: string[]; server: Server }> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.statusCode = 404;
        res.end();
        return;
      }
      contentTypes.push(req.headers['content-type'] ?? '');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport;
      for (const resourceSpan of body.resourceSpans) {
        const service = String(attributesOf(resourceSpan.resource.attributes)['service.name']);
        for (const scope of resourceSpan.scopeSpans) {
          for (const span of scope.spans) {
            spans.push({
              service,
              traceId: hex(span.traceId),
              spanId: hex(span.spanId),
              parentSpanId: hex(span.parentSpanId),
              name: span.name,
              kind: span.kind,
              attributes: attributesOf(span.attributes),
            });
          }
        }
      }
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, contentTypes, server };
}

/** A createLogger logger whose lines the test reads back. */
function capture(service: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger(service, 'debug', sink), lines };
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const PRODUCT = /* GraphQL */ `
  query ProductCard($id: ID!) { product(id: $id) { name price { amount } stock shippingEstimate { amount } } }
`;

const shop = demoShop();
const productsLog = capture('products');
let collector: Awaited<ReturnType<typeof startCollector>>;
let telemetry: Telemetry;
let stack: Stack;

beforeAll(async () => {
  collector = await startCollector();
  telemetry = await startTelemetry('shop-test', { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url });
  stack = await startStack({ logs: { products: productsLog.log } });
});
afterAll(async () => {
  await stack?.stop();
  await telemetry?.shutdown();
  await new Promise((resolve) => collector?.server.close(resolve));
});

const portOf = (url: string) => Number(new URL(url).port);

describe('tracing across the router and the subgraphs', () => {
  it('puts the router, the gateway, the subgraphs and their SQL in one trace', async () => {
    const product = shop.products[3]!;
    const res = await graphql(stack.url, PRODUCT, { id: product.id }, { 'x-request-id': 'traced-1' });
    expect(res.errors).toBeUndefined();
    expect(res.data).toMatchObject({ product: { name: product.name } });
    await telemetry.flush();

    const routerPort = portOf(stack.url);
    const serverSpan = (port: number) =>
      collector.spans.find((s) => s.kind === SPAN_KIND_SERVER && s.attributes['server.port'] === port);
    await expect.poll(() => serverSpan(portOf(stack.subgraphs.inventory.url)), { timeout: 5_000 }).toBeDefined();
    expect(collector.contentTypes[0]).toMatch(/application\/json/);

    const root = serverSpan(routerPort)!;
    expect(root).toMatchObject({
      service: 'shop-test',
      name: 'POST /graphql',
      parentSpanId: '',
      attributes: { 'graphql.operation.name': 'ProductCard', 'graphql.operation.type': 'query', 'http.response.status_code': 200 },
    });
    const trace = collector.spans.filter((s) => s.traceId === root.traceId);
    const names = trace.map((s) => s.name);
    for (const name of ['gateway.request', 'gateway.plan', 'gateway.execute', 'gateway.fetch']) expect(names).toContain(name);

    // Each subgraph's server span is the child of the gateway's fetch span for that subgraph.
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    for (const name of ['products', 'inventory'] as const) {
      const server = serverSpan(portOf(stack.subgraphs[name].url))!;
      expect(server.traceId).toBe(root.traceId);
      const parent = byId.get(server.parentSpanId);
      expect(parent).toMatchObject({ name: 'gateway.fetch', attributes: { service: name } });
      // The gateway names each subgraph operation after the client's.
      expect(server.attributes).toMatchObject({ 'graphql.operation.type': 'query', 'graphql.operation.name': expect.stringMatching(/^ProductCard__/) });
      // SQL statements under the subgraph's span, with placeholders and never the values.
      const sql = trace.filter((s) => s.kind === SPAN_KIND_CLIENT && s.parentSpanId === server.spanId);
      expect(sql.length).toBeGreaterThan(0);
      for (const statement of sql) {
        expect(statement.attributes['db.system.name']).toBe('postgresql');
        expect(statement.attributes['db.query.text']).toMatch(/\$1/);
        expect(String(statement.attributes['db.query.text'])).not.toContain(product.id);
      }
    }
    // A subgraph the query does not need is not in the trace.
    expect(serverSpan(portOf(stack.subgraphs.users.url))).toBeUndefined();

    // The products subgraph's log lines of the request name the trace.
    const lines = productsLog.lines.filter((line) => line.requestId === 'traced-1');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line.traceId).toBe(root.traceId);
  });

  it("continues a client's trace from its traceparent header", async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parent = 'b7ad6b7169203331';
    const res = await graphql(stack.url, PRODUCT, { id: shop.products[4]!.id }, { traceparent: `00-${traceId}-${parent}-01` });
    expect(res.errors).toBeUndefined();
    await telemetry.flush();
    await expect
      .poll(() => collector.spans.filter((s) => s.traceId === traceId && s.kind === SPAN_KIND_SERVER).length, { timeout: 5_000 })
      .toBe(3);
    const root = collector.spans.find((s) => s.traceId === traceId && s.attributes['server.port'] === portOf(stack.url));
    expect(root?.parentSpanId).toBe(parent);
  });

  it("carries placeOrder's trace into orders' own look-ups in users and products", async () => {
    const res = await graphql<{ placeOrder: { id: string } }>(
      stack.url,
      'mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }',
      { input: { userId: shop.users[2]!.id, items: [{ productId: shop.products[6]!.id, quantity: 1 }] } },
      { ...(await stack.auth('admin')), 'x-request-id': 'traced-order' },
    );
    expect(res.errors).toBeUndefined();
    await telemetry.flush();
    const ordersServer = () =>
      collector.spans.find(
        (s) => s.attributes['server.port'] === portOf(stack.subgraphs.orders.url) && s.attributes['graphql.operation.type'] === 'mutation',
      );
    await expect.poll(ordersServer, { timeout: 5_000 }).toBeDefined();
    const trace = collector.spans.filter((s) => s.traceId === ordersServer()!.traceId);
    for (const name of ['users', 'products'] as const) {
      const lookUp = trace.find((s) => s.kind === SPAN_KIND_SERVER && s.attributes['server.port'] === portOf(stack.subgraphs[name].url));
      expect(lookUp?.parentSpanId, name).toBe(ordersServer()!.spanId);
    }
  });

  it('sends nothing once telemetry is shut down, and requests work as before', async () => {
    await telemetry.shutdown();
    expect(tracingEnabled()).toBe(false);
    const before = collector.spans.length;
    const res = await graphql(stack.url, PRODUCT, { id: shop.products[5]!.id }, { 'x-request-id': 'untraced-1' });
    expect(res.errors).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(collector.spans.length).toBe(before);
    const lines = productsLog.lines.filter((line) => line.requestId === 'untraced-1');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).not.toHaveProperty('traceId');
  });
});

/** A service as its own process (`node --import tsx <entry>`), its JSON log lines collected. */
interface ServiceProcess {
  url: string;
  child: ChildProcess;
  lines: Record<string, unknown>[];
}

const root = fileURLToPath(new URL('../..', import.meta.url));

async function spawnService(entry: string, env: NodeJS.ProcessEnv): Promise<ServiceProcess> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const errors: string[] = [];
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const text = rest + chunk.toString('utf8');
    const parts = text.split('\n');
    rest = parts.pop()!;
    for (const part of parts) if (part.trim()) lines.push(JSON.parse(part) as Record<string, unknown>);
  });
  child.stderr!.on('data', (chunk: Buffer) => errors.push(chunk.toString('utf8')));
  const url = `http://127.0.0.1:${port}/graphql`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${entry} exited: ${errors.join('')}`);
    if (await fetch(new URL('/ready', url)).then((r) => r.ok, () => false)) return { url, child, lines };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  child.kill('SIGKILL');
  throw new Error(`${entry} did not start: ${errors.join('')}`);
}

describe('tracing in separate processes', () => {
  const started: ServiceProcess[] = [];
  afterAll(() => {
    for (const { child } of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('exports the router and subgraph processes\' spans as one trace, flushed when they stop', async () => {
    // Batches would wait a minute: spans that arrive were sent by the flush on SIGTERM.
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '60000' };
    const nowhere = 'http://127.0.0.1:1/graphql';
    const productsProcess = await spawnService('subgraphs/products/src/main.ts', {
      ...otel,
      PRODUCTS_DATABASE_URL: '',
      PRODUCTS_DATA_DIR: 'memory://',
      SEED_DEMO_DATA: 'true',
    });
    started.push(productsProcess);
    const routerProcess = await spawnService('router/src/main.ts', {
      ...otel,
      METRICS_PORT: '0',
      SUPERGRAPH_PATH: COMMITTED_SUPERGRAPH,
      PRODUCTS_SUBGRAPH_URL: productsProcess.url,
      USERS_SUBGRAPH_URL: nowhere,
      ORDERS_SUBGRAPH_URL: nowhere,
      INVENTORY_SUBGRAPH_URL: nowhere,
      REDIS_URL: '',
      RATE_LIMIT_MAX: '0',
    });
    started.push(routerProcess);

    const res = await graphql(routerProcess.url, '{ products(first: 2) { edges { node { name } } } }', undefined, {
      'x-request-id': 'process-trace-1',
    });
    expect(res.errors).toBeUndefined();
    const before = collector.spans.length;
    for (const { child } of [routerProcess, productsProcess]) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      expect((await exited)[0]).toBe(0);
    }
    const spans = collector.spans.slice(before);
    const routerRoot = spans.find((s) => s.service === 'router' && s.kind === SPAN_KIND_SERVER);
    expect(routerRoot).toBeDefined();
    const trace = spans.filter((s) => s.traceId === routerRoot!.traceId);
    const fetchSpan = trace.find((s) => s.service === 'router' && s.name === 'gateway.fetch');
    const subgraphServer = trace.find((s) => s.service === 'products' && s.kind === SPAN_KIND_SERVER);
    expect(subgraphServer?.parentSpanId).toBe(fetchSpan?.spanId);
    expect(trace.filter((s) => s.service === 'products' && s.kind === SPAN_KIND_CLIENT).length).toBeGreaterThan(0);

    // Each process's log lines of the request carry its id and the trace's.
    for (const { lines } of [routerProcess, productsProcess]) {
      const ofRequest = lines.filter((line) => line.requestId === 'process-trace-1');
      expect(ofRequest.length).toBeGreaterThan(0);
      for (const line of ofRequest) expect(line.traceId).toBe(routerRoot!.traceId);
    }
  });
});
