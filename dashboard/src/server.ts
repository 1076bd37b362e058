import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { QUEUES, createVerifiedTokenReader, probeRoutes, type JwtVerifierConfig, type Logger } from '@shop/common';
import { Gauge, Registry } from 'prom-client';
import { requireAdmin, type TokenReader } from './auth.js';
import { loginRoutes } from './login.js';

/** Every queue of the shop: the order saga's two and the customer notifications. */
export const SHOP_QUEUES = Object.values(QUEUES);

export interface Dashboard {
  app: Express;
  close(): Promise<void>;
}

export interface DashboardOptions {
  /** Queue key prefix (QUEUE_PREFIX). */
  prefix: string;
  /** How access tokens are verified (as the router does). */
  jwt: JwtVerifierConfig;
  /** The shop's GraphQL endpoint, for the login form. */
  routerUrl: string;
  secureCookie: boolean;
  log: Logger;
  basePath?: string;
  /** A token reader to use instead of one built from `jwt`. */
  verify?: TokenReader;
}

/**
 * Bull Board at `basePath` over the shop's queues, for administrators only (see auth.ts): failed jobs can be
 * inspected and retried there. /health, /ready and /metrics (job counts, no job data) answer without logging in,
 * like every other service's.
 */
export function createDashboard(connection: Redis, options: DashboardOptions): Dashboard {
  const basePath = options.basePath ?? '/queues';
  const queues = SHOP_QUEUES.map((name) => new Queue(name, { connection, prefix: options.prefix }));
  // Redis outages are logged once by the connection (and reported by /ready); the queues' own errors only at debug.
  for (const queue of queues) queue.on('error', (error) => options.log.debug({ err: error, queue: queue.name }, 'queue error'));
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
  const verify = options.verify ?? createVerifiedTokenReader(options.jwt);
  const probes = probeRoutes({ redis: () => connection.ping() });
  const app = express();
  app.disable('x-powered-by');
  // Open, like every service's: liveness, readiness (Redis answers) and job counts.
  app.use((req: Request, res: Response, next: NextFunction) => {
    probes(req, res).then((handled) => (handled ? undefined : next()), next);
  });
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  app.use(loginRoutes({ routerUrl: options.routerUrl, secureCookie: options.secureCookie, verify, log: options.log, home: basePath }));
  app.get('/', (_req, res) => res.redirect(302, basePath));
  // Everything past this point, Bull Board's pages and API included, is for administrators only.
  const admin = requireAdmin(verify, options.log);
  app.use((req: Request, res: Response, next: NextFunction) => {
    admin(req, res, next).catch(next);
  });
  app.use(basePath, adapter.getRouter() as express.Router);
  return {
    app,
    async close() {
      await Promise.all(queues.map((q) => q.close()));
    },
  };
}
