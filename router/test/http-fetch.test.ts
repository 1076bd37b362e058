import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpFetch } from '../src/http-fetch.js';

let server: Server;
let url: string;
const sockets = new Set<unknown>();
let seen: { method?: string; headers: IncomingMessage['headers']; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    sockets.add(req.socket);
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method, headers: req.headers, body });
      if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2_000);
      if (req.url === '/fail') {
        res.statusCode = 503;
        res.statusMessage = 'Service Unavailable';
        return void res.end('{"errors":[{"message":"down"}]}');
      }
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-twice', ['a', 'b']);
      res.end(JSON.stringify({ data: { echo: body, ünïcode: 'ok' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

describe('createHttpFetch', () => {
  it('sends method, headers and body, and answers status, headers, text and JSON', async () => {
    seen = [];
    const fetch = createHttpFetch();
    const body = JSON.stringify({ query: '{ x }', variables: { name: 'Zoë' } });
    const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'r1' }, body });
    expect(res.ok).toBe(true);
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${url}/graphql`);
    expect(res.headers.get('Content-Type')).toBe('application/json');
    expect(Object.fromEntries(res.headers)).toMatchObject({ 'content-type': 'application/json', 'x-twice': 'a, b' });
    expect(await res.json()).toEqual({ data: { echo: body, ünïcode: 'ok' } });
    expect(seen[0]).toMatchObject({ method: 'POST', body, headers: { 'x-request-id': 'r1', 'content-length': String(Buffer.byteLength(body)) } });
  });

  it('keeps connections alive between calls', async () => {
    const fetch = createHttpFetch();
    sockets.clear();
    for (let i = 0; i < 20; i++) await (await fetch(`${url}/graphql`, { method: 'POST', body: '{}' })).text();
    // undici may open a second connection while the first is still finishing its response; then both are reused.
    expect(sockets.size).toBeLessThanOrEqual(2);
  });

  it('passes error statuses through as responses', async () => {
    const res = await createHttpFetch()(`${url}/fail`, { method: 'POST', body: '{}' });
    expect(res.ok).toBe(false);
    expect(res.status).toBe(503);
    expect(res.statusText).toBe('Service Unavailable');
    expect(await res.text()).toContain('down');
  });

  it('gives up at the deadline of its signal', async () => {
    const started = Date.now();
    const error = await createHttpFetch()(`${url}/slow`, { signal: AbortSignal.timeout(100) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(['AbortError', 'TimeoutError']).toContain((error as Error).name);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('fails with the connection error code when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await createHttpFetch()(`http://127.0.0.1:${port}/graphql`).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('ECONNREFUSED');
  });
});
