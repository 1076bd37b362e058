import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import { startStack, type Stack } from './stack.js';
import { ORDER_DETAILS } from './fixtures/operations.js';

/**
 * Hostile input through the router, over HTTP and graphql-ws: a few thousand deep, wide, aliased, huge, malformed,
 * batched, misnamed and badly typed requests, from a seeded generator (the same every run). Every one must be
 * answered, in time, with a 4xx or with GraphQL errors that each carry a code other than INTERNAL_SERVER_ERROR; never
 * a 5xx, never a socket closed as an internal error.
 */

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

const shop = demoShop();
const ORDER = shop.orders[0]!.id;
const PRODUCT = shop.products[0]!.id;

/** mulberry32: a small seeded generator. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Request {
  kind: string;
  /** The JSON body (or raw text when `raw`). */
  body: unknown;
  raw?: boolean;
  contentType?: string;
  method?: 'GET' | 'POST';
}

const VALID = [
  ORDER_DETAILS,
  'query Page($n: Int, $a: String) { products(first: $n, after: $a) { edges { node { id sku name price { amount currency } stock inStock } } pageInfo { endCursor } } }',
  'query P($id: ID!) { product(id: $id) { id name shippingEstimate { amount } } }',
  'mutation Login($e: String!, $p: String!) { login(email: $e, password: $p) { token } }',
  'mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }',
  'query U($id: ID!) { user(id: $id) { name orders(first: 2) { edges { node { id } } } } }',
  '{ me { id } }',
];

function generator(seed: number) {
  const r = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(r() * items.length)]!;
  const int = (min: number, max: number) => min + Math.floor(r() * (max - min + 1));
  const junk = (length: number) => Array.from({ length }, () => String.fromCharCode(int(0, 0x2fff))).join('');
  const badValue = (): unknown =>
    pick<() => unknown>([
      () => junk(int(1, 40)),
      () => 2 ** 53 + int(0, 9),
      () => -1,
      () => 1.5,
      () => null,
      () => [1, 'two', { three: 3 }],
      () => ({ nested: { deeper: { deepest: junk(5) } } }),
      () => 'x'.repeat(int(1_000, 50_000)),
      () => true,
      () => "'; DROP TABLE orders; --",
      () => '00000000-0000-0000-0000-000000000000',
      () => `${PRODUCT.slice(0, -1)}z`,
    ])();
  const nest = (levels: number) => {
    let selection = 'id';
    for (let i = 0; i < levels; i++) selection = `user { orders(first: 2) { edges { node { ${selection} } } } }`;
    return `{ order(id: "${ORDER}") { ${selection} } }`;
  };
  const cases: (() => Request)[] = [
    // Deep, wide, aliased, many roots, fragments.
    () => ({ kind: 'deep', body: { query: nest(int(2, 30)) } }),
    () => ({ kind: 'wide', body: { query: `{ products(first: ${int(0, 100)}) { edges { node { ${'id name '.repeat(int(10, 600))} } } } }` } }),
    () => ({ kind: 'aliased', body: { query: `{ ${Array.from({ length: int(5, 200) }, (_, i) => `a${i}: product(id: "${PRODUCT}") { name }`).join(' ')} }` } }),
    () => ({ kind: 'roots', body: { query: `{ ${Array.from({ length: int(5, 60) }, (_, i) => `r${i}: __typename`).join(' ')} }` } }),
    () => ({ kind: 'expensive', body: { query: `{ orders(first: ${int(50, 100)}) { edges { node { items { product { name } } user { orders(first: 100) { edges { node { id } } } } } } } }` } }),
    () => ({ kind: 'fragment cycle', body: { query: '{ order(id: "1") { ...A } } fragment A on Order { user { orders { edges { node { ...B } } } } } fragment B on Order { ...A }' } }),
    () => ({ kind: 'fragment spread', body: { query: `{ product(id: "${PRODUCT}") { ...${pick(['Missing', 'F'])} } } fragment F on ${pick(['Order', 'Product', 'Nope'])} { id }` } }),
    // Huge.
    () => ({ kind: 'huge argument', body: { query: `{ product(id: "${'9'.repeat(int(1_000, 400_000))}") { id } }` } }),
    () => ({ kind: 'huge body', body: { query: `# ${'x'.repeat(int(1_000_001, 1_300_000))}\n{ __typename }` } }),
    () => ({ kind: 'many tokens', body: { query: `{ ${'__typename '.repeat(int(4_000, 20_000))} }` } }),
    // Malformed.
    () => {
      const query = pick(VALID);
      return { kind: 'truncated', body: { query: query.slice(0, int(0, query.length - 1)) } };
    },
    () => ({ kind: 'garbage query', body: { query: junk(int(0, 300)) } }),
    () => ({ kind: 'garbage body', body: junk(int(0, 300)), raw: true }),
    () => ({ kind: 'truncated json', body: JSON.stringify({ query: pick(VALID), variables: { id: PRODUCT } }).slice(0, int(1, 60)), raw: true }),
    () => ({ kind: 'wrong shape', body: pick<unknown>([null, 5, 'query', true, { query: 5 }, { query: { a: 1 } }, { query: null }, { query: ['{ __typename }'] }, {}, { variables: {} }]) }),
    () => ({ kind: 'wrong content type', body: JSON.stringify({ query: '{ __typename }' }), raw: true, contentType: pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/graphql']) }),
    () => ({ kind: 'get', method: 'GET', body: pick(['?query=%7B__typename', `?query=${encodeURIComponent('mutation { login(email: "a", password: "b") { token } }')}`, '?query=%7B__typename%7D&variables=%7B', '?extensions=nope', `?query=${encodeURIComponent(nest(20))}`]) }),
    // Batched.
    () => ({ kind: 'batched', body: Array.from({ length: int(2, 50) }, () => ({ query: pick(VALID), variables: { id: PRODUCT } })) }),
    // Operation names.
    () => ({ kind: 'unknown operation', body: { query: pick(VALID), operationName: pick(['Nope', '', 'X'.repeat(5_000), junk(10)]) } }),
    () => ({ kind: 'operation name type', body: { query: pick(VALID), operationName: pick<unknown>([5, {}, [], true]) } }),
    () => ({ kind: 'several unnamed', body: { query: `${pick(VALID)}\n${pick(VALID)}\nquery { __typename }` } }),
    () => ({ kind: 'subscription over http', body: { query: 'subscription { orderStatusChanged(orderId: "x") { id } }' } }),
    // Bad variables.
    () => ({ kind: 'bad variables', body: { query: pick(VALID), variables: { id: badValue(), n: badValue(), a: badValue(), e: badValue(), p: badValue(), input: badValue() } } }),
    () => ({ kind: 'bad variables shape', body: { query: pick(VALID), variables: pick<unknown>(['{"id":1}', 5, [1, 2], true]) } }),
    () => ({
      kind: 'bad order input',
      body: { query: VALID[4], variables: { input: { items: Array.from({ length: int(0, 60) }, () => ({ productId: pick([PRODUCT, 'nope', '']), quantity: pick([1, 0, -5, 1e9, 2.5]) })), idempotencyKey: pick(['', 'k', 'x'.repeat(500), '\u0000']) } } },
    }),
    () => ({ kind: 'bad arguments', body: { query: `{ products(first: ${pick(['-1', '2147483648', '1e3', '"5"', 'null', '101'])}, after: ${pick(['"garbage"', '"eyJ4IjoxfQ"', '5', 'null'])}) { edges { node { id } } } }` } }),
    () => ({ kind: 'directives', body: { query: `query($b: Boolean) { __typename @${pick(['include(if: "x")', 'skip(if: $b)', 'include', 'nope', 'defer', 'skip(if: true) @skip(if: false)'])} }` } }),
    () => ({ kind: 'persisted query', body: { extensions: { persistedQuery: pick<unknown>([{ version: 1, sha256Hash: junk(64) }, { version: 2, sha256Hash: 'a'.repeat(64) }, { version: 1 }, 'x', null]) } } }),
    () => ({ kind: 'internal fields', body: { query: pick(['{ _entities(representations: [{ __typename: "Product", id: "1" }]) { __typename } }', '{ _service { sdl } }', '{ __type(name: "Query") { fields { name } } }']) } }),
  ];
  return { next: () => pick(cases)(), cases: cases.length, int, pick };
}

/** Problems found: a request, what it got. */
type Problem = { kind: string; got: string };

function checkErrors(kind: string, body: unknown, problems: Problem[]): void {
  const errors = (body as { errors?: unknown } | null)?.errors;
  if (errors === undefined) return;
  if (!Array.isArray(errors) || errors.length === 0) {
    problems.push({ kind, got: `errors is ${JSON.stringify(errors)}` });
    return;
  }
  for (const error of errors as { message?: string; extensions?: { code?: unknown } }[]) {
    const code = error.extensions?.code;
    if (typeof code !== 'string' || code === 'INTERNAL_SERVER_ERROR') problems.push({ kind, got: `${String(code)}: ${error.message?.slice(0, 200)}` });
  }
}

async function sendHttp(url: string, request: Request, problems: Problem[], statuses: Map<number, number>): Promise<void> {
  const method = request.method ?? 'POST';
  let res: Response;
  try {
    res = await fetch(method === 'GET' ? `${url}${String(request.body)}` : url, {
      method,
      headers: { 'content-type': request.contentType ?? 'application/json', 'apollo-require-preflight': 'true' },
      ...(method === 'POST' ? { body: request.raw ? String(request.body) : JSON.stringify(request.body) } : {}),
      signal: AbortSignal.timeout(20_000),
    });
  } catch (error) {
    problems.push({ kind: request.kind, got: `no answer: ${(error as Error).message}` });
    return;
  }
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  const text = await res.text();
  if (res.status >= 500) problems.push({ kind: request.kind, got: `HTTP ${res.status}: ${text.slice(0, 200)}` });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    problems.push({ kind: request.kind, got: `HTTP ${res.status}, not JSON: ${text.slice(0, 100)}` });
    return;
  }
  if (res.status >= 400 && !(body as { errors?: unknown })?.errors) problems.push({ kind: request.kind, got: `HTTP ${res.status} without errors` });
  for (const item of Array.isArray(body) ? body : [body]) checkErrors(request.kind, item, problems);
}

/** Runs `tasks` with at most `width` at once. */
async function bounded<T>(tasks: readonly T[], width: number, run: (task: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) await run(tasks[next++]!);
    }),
  );
}

describe('hostile input through the router', () => {
  it('answers thousands of hostile HTTP requests with a 4xx or coded GraphQL errors, never a 5xx, none hanging', { timeout: 600_000 }, async () => {
    const { next, cases } = generator(16);
    const requests = Array.from({ length: 2_500 }, next);
    const problems: Problem[] = [];
    const statuses = new Map<number, number>();
    await bounded(requests, 8, (request) => sendHttp(stack.url, request, problems, statuses));
    expect(cases).toBeGreaterThan(25);
    expect([...statuses.keys()].filter((s) => s >= 500)).toEqual([]);
    expect(problems.slice(0, 20)).toEqual([]);
    // The mix did reach the refusals and the subgraphs alike.
    expect(statuses.get(400)).toBeGreaterThan(500);
    expect(statuses.get(200)).toBeGreaterThan(100);
    expect(statuses.get(413)).toBeGreaterThan(10);
  });

  it('answers hostile graphql-ws operations and protocol messages with coded errors or 4xxx closes, never 1011, none hanging', { timeout: 600_000 }, async () => {
    const { next, int } = generator(61);
    const problems: Problem[] = [];
    const closes = new Map<number, number>();
    let answered = 0;
    const url = stack.url.replace('http', 'ws');

    /** A connection that has been acknowledged. */
    const open = () =>
      new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(url, 'graphql-transport-ws');
        socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: {} })));
        socket.once('error', reject);
        socket.on('message', function ack(data) {
          if ((JSON.parse(String(data)) as { type: string }).type === 'connection_ack') {
            socket.off('message', ack);
            resolve(socket);
          }
        });
      });

    /** Sends one operation and waits for its error, its completion or its first result (then stops it). */
    const operate = (socket: WebSocket, id: string, payload: unknown, kind: string) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          problems.push({ kind, got: 'no answer in 20 s' });
          done();
        }, 20_000);
        const onClose = (code: number) => {
          closes.set(code, (closes.get(code) ?? 0) + 1);
          if (code < 4000 || code >= 4500) problems.push({ kind, got: `socket closed with ${code}` });
          done();
        };
        const onMessage = (data: WebSocket.RawData) => {
          const message = JSON.parse(String(data)) as { id?: string; type: string; payload?: unknown };
          if (message.id !== id) return;
          if (message.type === 'error') {
            checkErrors(kind, { errors: message.payload }, problems);
          } else if (message.type === 'next') {
            checkErrors(kind, message.payload, problems);
            socket.send(JSON.stringify({ id, type: 'complete' }));
          }
          done();
        };
        function done() {
          clearTimeout(timer);
          socket.off('message', onMessage);
          socket.off('close', onClose);
          answered += 1;
          resolve();
        }
        socket.on('message', onMessage);
        socket.on('close', onClose);
        socket.send(JSON.stringify({ id, type: 'subscribe', payload }));
      });

    const hostileMessages = [
      'not json',
      '{"type":"subscribe"}',
      '{"id":5,"type":"subscribe","payload":{"query":"{ __typename }"}}',
      '{"id":"x","type":"subscribe","payload":null}',
      '{"type":"connection_init"}',
      '{"type":"nope"}',
      '[]',
    ];
    await bounded([0, 1, 2, 3], 4, async (lane) => {
      let socket = await open();
      for (let i = 0; i < 200; i++) {
        if (socket.readyState !== WebSocket.OPEN) socket = await open();
        const request = next();
        if (request.raw || request.method === 'GET' || Array.isArray(request.body) || typeof request.body !== 'object' || request.body === null) {
          // Not a GraphQL payload: sent as a broken protocol message half the time, as the query otherwise.
          if (int(0, 1) === 0) {
            const closed = new Promise<number>((resolve) => socket.once('close', resolve));
            socket.send(hostileMessages[i % hostileMessages.length]!);
            const code = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(0), 20_000))]);
            closes.set(code, (closes.get(code) ?? 0) + 1);
            if (code < 4000 || code >= 4500) problems.push({ kind: 'protocol', got: `closed with ${code}` });
            continue;
          }
          await operate(socket, `${lane}-${i}`, { query: String(JSON.stringify(request.body)) }, request.kind);
          continue;
        }
        await operate(socket, `${lane}-${i}`, request.body, request.kind);
      }
      socket.close();
    });
    expect(problems.slice(0, 20)).toEqual([]);
    expect(answered).toBeGreaterThan(600);
    expect([...closes.keys()].every((code) => code >= 4000 && code < 4500)).toBe(true);
  });
});
