import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { demoShop } from '@shop/common';
import { graphql, startTestSubgraph, type TestSubgraph } from '@shop/common/testing';
import { inventory } from '../src/server.js';

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A private redis-server on `port` that keeps nothing on disk; resolves once it answers PING. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const deadline = Date.now() + 5_000;
  for (;;) {
    const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return child;
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      client.disconnect();
    }
  }
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

const shop = demoShop();
let port: number;
let redis: ChildProcess;
let subgraph: TestSubgraph;

beforeAll(async () => {
  port = await freePort();
  redis = await startRedis(port);
  // Queues under a prefix on this private Redis: nothing of anyone else's is touched.
  subgraph = await startTestSubgraph(inventory, {
    seed: true,
    env: { REDIS_URL: `redis://127.0.0.1:${port}`, QUEUE_PREFIX: 'ready-test' },
  });
});
afterAll(async () => {
  await subgraph?.close();
  if (redis) await stopRedis(redis);
});

const probe = async (path: string) => {
  const res = await fetch(new URL(path, subgraph.url));
  return { status: res.status, body: (await res.json()) as { status: string; checks?: Record<string, string> } };
};

describe('inventory /ready while its Redis goes away and comes back', () => {
  it('answers 503 naming redis during the outage, keeps serving reads, and is ready again once Redis is back', async () => {
    await expect.poll(() => probe('/ready'), { timeout: 5_000 }).toEqual({
      status: 200,
      body: { status: 'ready', checks: { database: 'ok', redis: 'ok' } },
    });

    await stopRedis(redis);
    const down = Date.now();
    await expect.poll(async () => (await probe('/ready')).status, { timeout: 5_000 }).toBe(503);
    const unready = await probe('/ready');
    expect(unready.body.status).toBe('unavailable');
    expect(unready.body.checks?.database).toBe('ok');
    expect(unready.body.checks?.redis).not.toBe('ok');
    expect(unready.body.checks?.redis).toEqual(expect.any(String));
    // Liveness is not readiness: the process is fine and is not to be restarted.
    expect(await probe('/health')).toEqual({ status: 200, body: { status: 'ok' } });
    // Reads need only the database.
    const product = shop.products[0]!;
    const read = await graphql(subgraph.url, `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Product { stock } } }`, {
      r: [{ __typename: 'Product', id: product.id }],
    });
    expect(read.errors).toBeUndefined();
    expect(read.data).toEqual({ _entities: [{ stock: expect.any(Number) }] });

    // Down for a while, so the client is in its reconnect backoff, then back on the same port.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    redis = await startRedis(port);
    const back = Date.now();
    await expect.poll(() => probe('/ready'), { timeout: 10_000, interval: 100 }).toEqual({
      status: 200,
      body: { status: 'ready', checks: { database: 'ok', redis: 'ok' } },
    });
    // Within the client's reconnect backoff (at most 5 s) of Redis being back.
    expect(Date.now() - back).toBeLessThan(6_000);
    expect(back - down).toBeGreaterThanOrEqual(1_500);
  });
});
