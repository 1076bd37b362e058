import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSubgraph, type TestSubgraph } from '@shop/common/testing';
import { orders } from '../src/server.js';

let subgraph: TestSubgraph;

beforeAll(async () => {
  subgraph = await startTestSubgraph(orders);
});
afterAll(() => subgraph?.close());

const probe = async (path: string) => {
  const res = await fetch(new URL(path, subgraph.url));
  return { status: res.status, body: (await res.json()) as unknown };
};

describe('orders /health and /ready', () => {
  it('is ready when its database and Redis answer', async () => {
    expect(await probe('/health')).toEqual({ status: 200, body: { status: 'ok' } });
    // Redis connects in the background after start-up; readiness follows it.
    await expect.poll(() => probe('/ready'), { timeout: 5_000 }).toEqual({
      status: 200,
      body: { status: 'ready', checks: { database: 'ok', redis: 'ok' } },
    });
  });

  it('answers 503 naming the dependency that is down, while /health stays 200', async () => {
    await subgraph.db.close();
    const ready = await probe('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ status: 'unavailable', checks: { database: expect.not.stringMatching(/^ok$/), redis: 'ok' } });
    expect((await probe('/health')).status).toBe(200);
  });
});
