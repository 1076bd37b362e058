import { Queue } from 'bullmq';
import { createLogger, demoShop, migrate, openDatabase, QUEUES } from '@shop/common';
import { startNotificationWorker, users } from '@shop/users';
import { notificationJobOptions } from '../../subgraphs/users/src/notifications/jobs.js';
import { round } from '../lib/load.js';
import type { BenchContext, ScenarioResult } from '../lib/context.js';

/**
 * 6. One notification worker (default concurrency, local transport) draining a
 * queue of order notifications: each job checks it was not sent, reads the user,
 * renders, and records the message in the users database. The jobs are queued
 * first, so the clock runs from the worker's start to its last completion.
 */
export async function workerScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const { storage, settings } = ctx;
  const target = await storage.extraDatabase('worker');
  const db = await openDatabase({ url: target.url, dataDir: target.dataDir });
  const prefix = `${storage.prefix}:worker`;
  const connection = { url: storage.redisUrl };
  const queue = new Queue(QUEUES.notifications, { connection, prefix });
  try {
    await migrate(db, users.migrations);
    await users.seed(db);
    const shop = demoShop();
    const jobs = Array.from({ length: settings.workerJobs }, (_, i) => {
      const order = shop.orders[i % shop.orders.length]!;
      return {
        name: 'order-status',
        data: {
          userId: order.userId,
          orderId: `bench-${i}`,
          status: 'CONFIRMED',
          reason: null,
          items: order.lines.map((l) => ({ productId: l.productId, productName: null, quantity: l.quantity, unitPrice: { amount: l.unitPriceAmount, currency: 'USD' } })),
          total: { amount: order.lines.reduce((s, l) => s + l.quantity * l.unitPriceAmount, 0), currency: 'USD' },
        },
        // The options every producer gives these jobs.
        opts: { ...notificationJobOptions(), jobId: `bench-${i}` },
      };
    });
    for (let i = 0; i < jobs.length; i += 1_000) await queue.addBulk(jobs.slice(i, i + 1_000));

    let completed = 0;
    let failed = 0;
    let last = 0;
    let resolveDone = () => undefined as void;
    let rejectDone = (_error: Error) => undefined as void;
    const allDone = new Promise<void>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    const env = { REDIS_URL: storage.redisUrl, QUEUE_PREFIX: prefix };
    const t0 = performance.now();
    const worker = await startNotificationWorker(db, env, createLogger('worker', 'silent'));
    const concurrency = worker.worker.opts.concurrency;
    const settle = () => {
      last = performance.now();
      if (completed + failed === jobs.length) resolveDone();
    };
    worker.worker.on('completed', () => {
      completed++;
      settle();
    });
    worker.worker.on('failed', () => {
      failed++;
      settle();
    });
    const timeout = setTimeout(() => rejectDone(new Error(`worker did ${completed} of ${jobs.length} jobs in time`)), 600_000);
    await allDone.finally(() => clearTimeout(timeout));
    await worker.close();
    const seconds = (last - t0) / 1000;
    const [{ recorded }] = (await db.query<{ recorded: number }>("SELECT count(*)::int AS recorded FROM notifications WHERE job_id LIKE 'bench-%'")) as [
      { recorded: number },
    ];
    const perSecond = round(completed / seconds);
    return {
      scenario: 'worker',
      title: 'Notification worker: jobs per second, one worker',
      jobs: jobs.length,
      completed,
      failed,
      recorded,
      concurrency,
      database: db.kind,
      seconds: round(seconds, 2),
      jobsPerSecond: perSecond,
      targets: [
        { goal: '>= 1,000 notification jobs/s for one worker', measured: `${perSecond} jobs/s (concurrency ${concurrency}, ${db.kind})`, met: perSecond >= 1_000 },
        { goal: 'every job done once', measured: `${completed} completed, ${failed} failed, ${recorded} recorded of ${jobs.length}`, met: failed === 0 && recorded === jobs.length },
      ],
    };
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await db.close();
  }
}
