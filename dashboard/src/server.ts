import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import express, { type Express } from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { QUEUES } from '@shop/common';
import { Gauge, Registry } from 'prom-client';

/** Every queue of the shop: the order saga's two and the customer notifications. */
export const SHOP_QUEUES = Object.values(QUEUES);

export interface Dashboard {
  app: Express;
  close(): Promise<void>;
}

/** Bull Board at `basePath` over the shop's queues; failed jobs can be inspected and retried there. */
export function createDashboard(connection: Redis, prefix: string, basePath = '/queues'): Dashboard {
  const queues = SHOP_QUEUES.map((name) => new Queue(name, { connection, prefix }));
  const adapter = new ExpressAdapter();
  adapter.setBasePath(basePath);
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter: adapter });
  const registry = new Registry();
  new Gauge({
    name: 'queue_jobs',
    help: 'Jobs in each shop queue, by state (failed is the dead letter).',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const queue of queues) {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
        for (const [state, count] of Object.entries(counts)) this.set({ queue: queue.name, state }, count);
      }
    },
  });
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.use(basePath, adapter.getRouter() as express.Router);
  return {
    app,
    async close() {
      await Promise.all(queues.map((q) => q.close()));
    },
  };
}
