import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, demoShop, type Logger } from '@shop/common';
import { graphql } from '@shop/common/testing';
import { startStack, type Stack } from './stack.js';

type Line = Record<string, unknown>;

/** A logger made like each process's own (createLogger), writing to lines the test reads back. */
function capture(service: string): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Line);
      done();
    },
  });
  return { log: createLogger(service, 'debug', sink), lines };
}

const PRODUCT = /* GraphQL */ `
  query ProductCard($id: ID!) { product(id: $id) { name stock shippingEstimate { amount } } }
`;

const shop = demoShop();
const logs = {
  router: capture('router'),
  users: capture('users'),
  products: capture('products'),
  orders: capture('orders'),
  inventory: capture('inventory'),
};
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ logs: Object.fromEntries(Object.entries(logs).map(([name, { log }]) => [name, log])) });
});
afterAll(() => stack?.stop());

/** What each service logged while `fn` ran. */
async function linesDuring(fn: () => Promise<unknown>): Promise<Record<keyof typeof logs, Line[]>> {
  const marks = Object.fromEntries(Object.entries(logs).map(([name, { lines }]) => [name, lines.length]));
  await fn();
  // The subgraphs' last line is written after their response is sent; give it a moment.
  await new Promise((resolve) => setTimeout(resolve, 100));
  return Object.fromEntries(Object.entries(logs).map(([name, { lines }]) => [name, lines.slice(marks[name])])) as Record<
    keyof typeof logs,
    Line[]
  >;
}

describe('structured logs through the router', () => {
  it("carries the client's request id on every line the router and the subgraphs log for the request", async () => {
    const product = shop.products[7]!;
    let status = 0;
    const during = await linesDuring(async () => {
      const res = await graphql(stack.url, PRODUCT, { id: product.id }, { 'x-request-id': 'logs-e2e-1' });
      expect(res.errors).toBeUndefined();
      expect(res.data).toMatchObject({ product: { name: product.name } });
      status = res.status;
    });
    expect(status).toBe(200);
    // The router's operation line and each service's request line, at least.
    expect(during.router.map((line) => line.msg)).toEqual(expect.arrayContaining(['operation', 'graphql request']));
    expect(during.products.map((line) => line.msg)).toContain('graphql request');
    expect(during.inventory.map((line) => line.msg)).toContain('graphql request');
    for (const [service, lines] of Object.entries(during)) {
      if (service === 'users' || service === 'orders') continue;
      for (const line of lines) {
        expect({ service, line }).toMatchObject({ service, line: { requestId: 'logs-e2e-1', service } });
      }
    }
    expect(during.router.find((line) => line.msg === 'operation')).toMatchObject({ operationName: 'ProductCard', errors: 0 });
  });

  it('keeps the lines of concurrent requests apart', async () => {
    const ids = ['logs-e2e-a', 'logs-e2e-b', 'logs-e2e-c', 'logs-e2e-d'];
    const during = await linesDuring(() =>
      Promise.all(ids.map((id, i) => graphql(stack.url, PRODUCT, { id: shop.products[10 + i]!.id }, { 'x-request-id': id }))),
    );
    for (const id of ids) {
      // One request line per service, one operation line on the router, all with this id.
      expect(during.router.filter((line) => line.requestId === id).map((line) => line.msg).sort()).toEqual(['graphql request', 'operation']);
      expect(during.products.filter((line) => line.requestId === id)).toHaveLength(1);
      expect(during.inventory.filter((line) => line.requestId === id)).toHaveLength(1);
    }
    for (const lines of [during.router, during.products, during.inventory]) for (const line of lines) expect(ids).toContain(line.requestId);
  });

  it('gives a request without an id one of its own, echoed to the client and sent to the subgraphs', async () => {
    let echoed: string | null = null;
    const during = await linesDuring(async () => {
      const res = await graphql(stack.url, PRODUCT, { id: shop.products[20]!.id });
      echoed = res.headers.get('x-request-id');
    });
    expect(echoed).toMatch(/^[0-9a-f-]{36}$/);
    for (const lines of [during.router, during.products, during.inventory]) {
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(line.requestId).toBe(echoed);
    }
  });

  it('follows an order from the request that placed it through the saga jobs it caused', async () => {
    const buyer = shop.users[3]!;
    const product = shop.products[30]!;
    const admin = await stack.auth('admin');
    const during = await linesDuring(async () => {
      const res = await graphql<{ placeOrder: { id: string } }>(
        stack.url,
        'mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }',
        { input: { userId: buyer.id, items: [{ productId: product.id, quantity: 1 }] } },
        { ...admin, 'x-request-id': 'logs-e2e-order' },
      );
      expect(res.errors).toBeUndefined();
      // Inventory reserves (a job from orders' outbox), orders applies the result (a job from inventory's).
      await expect
        .poll(() => logs.orders.lines.some((line) => line.msg === 'job done' && line.queue === 'order-reservation-results' && line.requestId === 'logs-e2e-order'), {
          timeout: 10_000,
        })
        .toBe(true);
    });
    const reserve = during.inventory.find((line) => line.msg === 'job done' && line.queue === 'inventory-reservations');
    expect(reserve).toMatchObject({ requestId: 'logs-e2e-order', name: 'reserve', jobId: expect.stringMatching(/^reserve-/) });
    // The look-ups orders made for the request, in the users and products subgraphs, carry its id too.
    expect(during.users.filter((line) => line.requestId === 'logs-e2e-order').length).toBeGreaterThan(0);
    expect(during.products.filter((line) => line.requestId === 'logs-e2e-order').length).toBeGreaterThan(0);
    // Every job line names its job and queue.
    for (const line of [...during.orders, ...during.inventory, ...during.users].filter((l) => l.msg === 'job done')) {
      expect(line).toMatchObject({ jobId: expect.any(String), queue: expect.any(String) });
    }
  });
});
