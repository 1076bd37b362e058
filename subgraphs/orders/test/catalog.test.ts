import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEV_IDENTITY_SECRET, createLogger } from '@shop/common';
import { CatalogClient, ServiceUnavailableError } from '../src/catalog.js';

/**
 * A server that misbehaves on request, standing in for a users or products subgraph under trouble; the real
 * subgraphs are used by the other test files.
 */
let server: Server;
let url: string;
let replies: ((req: IncomingMessage, res: ServerResponse) => void)[] = [];
let requests: { requestId: string | undefined; body: string }[] = [];

const PRODUCT = { id: '11111111-1111-4111-8111-111111111111', name: 'Kettle', price: { amount: 1999, currency: 'USD' } };
const json = (body: unknown, status = 200) => (_req: IncomingMessage, res: ServerResponse) => {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
};
const hang = () => () => undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      requests.push({ requestId: req.headers['x-request-id'] as string | undefined, body });
      (replies.shift() ?? json({ errors: [{ message: 'no reply prepared' }] }, 500))(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  replies = [];
  requests = [];
});

const client = (retries = 2, timeoutMs = 200) =>
  new CatalogClient({
    usersUrl: url,
    productsUrl: url,
    timeoutMs,
    retries,
    backoffMs: 10,
    log: createLogger('catalog-test', 'silent'),
    identitySecret: DEV_IDENTITY_SECRET,
  });

describe('CatalogClient', () => {
  it('asks for all products in one request with the request id, and maps missing ones out', async () => {
    replies = [json({ data: { _entities: [PRODUCT, null] } })];
    const found = await client().products([PRODUCT.id, '22222222-2222-4222-8222-222222222222'], 'req-1');
    expect([...found.values()]).toEqual([PRODUCT]);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.requestId).toBe('req-1');
    expect(JSON.parse(requests[0]!.body).variables).toEqual({
      r: [
        { __typename: 'Product', id: PRODUCT.id },
        { __typename: 'Product', id: '22222222-2222-4222-8222-222222222222' },
      ],
    });
  });

  it('retries a 5xx answer and a timeout, then succeeds', async () => {
    replies = [json({}, 503), hang(), json({ data: { _entities: [{ id: PRODUCT.id }] } })];
    const users = await client().existingUsers([PRODUCT.id], 'req-2');
    expect([...users]).toEqual([PRODUCT.id]);
    expect(requests).toHaveLength(3);
  });

  it('gives up after its retries with SERVICE_UNAVAILABLE', async () => {
    replies = [json({}, 502), json({}, 503), json({}, 500)];
    const failure = await client(2).products([PRODUCT.id], 'req-3').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ServiceUnavailableError);
    expect((failure as ServiceUnavailableError).extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', service: 'products' });
    expect((failure as Error).message).toContain('HTTP 500');
    expect(requests).toHaveLength(3);
  });

  it('gives up on a server that never answers within attempts times the timeout', async () => {
    replies = [hang(), hang()];
    const started = Date.now();
    const failure = await client(1, 150).existingUsers([PRODUCT.id], 'req-4').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ServiceUnavailableError);
    expect((failure as Error).message).toContain('no answer within 150 ms');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(requests).toHaveLength(2);
  });

  it('does not retry answers that will not change: a 4xx or errors in a 200', async () => {
    replies = [json({ errors: [{ message: 'Cannot query field' }] }, 400)];
    await expect(client().products([PRODUCT.id], 'req-5')).rejects.toThrow('refused the entity query with HTTP 400');
    expect(requests).toHaveLength(1);

    replies = [json({ data: { _entities: [null] }, errors: [{ message: 'database is down' }] })];
    await expect(client().products([PRODUCT.id], 'req-6')).rejects.toThrow(ServiceUnavailableError);
    expect(requests).toHaveLength(2);
  });

  it('treats an unexpected product shape as unavailable rather than ordering at a made-up price', async () => {
    replies = [json({ data: { _entities: [{ id: PRODUCT.id, name: 'Kettle', price: null }] } })];
    await expect(client().products([PRODUCT.id], 'req-7')).rejects.toThrow(ServiceUnavailableError);
  });
});
