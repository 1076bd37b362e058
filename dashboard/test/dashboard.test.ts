import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, createRedis } from '@shop/common';
import { createTestRedis, type TestRedis } from '@shop/common/testing';
import { createDashboard, type Dashboard } from '../src/server.js';

let redis: TestRedis;
let connection: Redis;
let dashboard: Dashboard;
let server: Server;
let base: string;

beforeAll(async () => {
  redis = await createTestRedis('dashboard');
  connection = createRedis(redis.url, createLogger('dashboard-test', 'silent'));
  dashboard = createDashboard(connection, redis.prefix);
  server = createServer(dashboard.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await dashboard?.close();
  connection?.disconnect();
  await redis?.cleanup();
});

describe('queue dashboard', () => {
  it('serves Bull Board and reports the jobs of the shop queues', async () => {
    const page = await fetch(`${base}/queues`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');

    const queue = new Queue('notifications', { connection, prefix: redis.prefix });
    await queue.add('welcome', { userId: 'x' }, { jobId: 'welcome-x' });
    const res = await fetch(`${base}/queues/api/queues`);
    const body = (await res.json()) as { queues: { name: string; counts: Record<string, number> }[] };
    expect(body.queues.map((q) => q.name).sort()).toEqual(['inventory-reservations', 'notifications', 'order-reservation-results']);
    expect(body.queues.find((q) => q.name === 'notifications')?.counts.waiting).toBe(1);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('queue_jobs{queue="notifications",state="waiting"} 1');
    expect(metrics).toContain('queue_jobs{queue="inventory-reservations",state="failed"} 0');
    await queue.close();
  });
});
