import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { createLogger, demoShop, migrate, openDatabase, QUEUES, type Database } from '@shop/common';
import { startNotificationWorker, users } from '@shop/users';
import { notificationJobOptions } from '../../subgraphs/users/src/notifications/jobs.js';
import { round } from '../lib/load.js';
import { ROOT } from '../lib/processes.js';
import type { BenchContext, ScenarioResult } from '../lib/context.js';

export interface Drain {
  label: string;
  concurrency: number;
  jobs: number;
  completed: number;
  failed: number;
  recorded: number;
  seconds: number;
  jobsPerSecond: number;
}

/** Queues `count` order notifications, then times one worker from its start to its last completion. */
export async function drain(db: Database, redisUrl: string, prefix: string, label: string, count: number, concurrency?: number): Promise<Drain> {
  const queue = new Queue(QUEUES.notifications, { connection: { url: redisUrl }, prefix });
  try {
    const shop = demoShop();
    const jobs = Array.from({ length: count }, (_, i) => {
      const order = shop.orders[i % shop.orders.length]!;
      const id = `bench-${label}-${i}`;
      return {
        name: 'order-status',
        data: {
          userId: order.userId,
          orderId: id,
          status: 'CONFIRMED',
          reason: null,
          items: order.lines.map((l) => ({ productId: l.productId, productName: null, quantity: l.quantity, unitPrice: { amount: l.unitPriceAmount, currency: 'USD' } })),
          total: { amount: order.lines.reduce((s, l) => s + l.quantity * l.unitPriceAmount, 0), currency: 'USD' },
        },
        // The options every producer gives these jobs.
        opts: { ...notificationJobOptions(), jobId: id },
      };
    });
    for (let i = 0; i < jobs.length; i += 1_000) await queue.addBulk(jobs.slice(i, i + 1_000));

    let completed = 0;
    let failed = 0;
    let last = 0;
    let resolveDone = () => undefined as void;
    const allDone = new Promise<void>((resolve) => (resolveDone = resolve));
    const t0 = performance.now();
    const worker = await startNotificationWorker(db, { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix }, createLogger('worker', 'silent'), {
      ...(concurrency ? { concurrency } : {}),
    });
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
    const timeout = setTimeout(resolveDone, 600_000);
    await allDone;
    clearTimeout(timeout);
    const used = worker.worker.opts.concurrency ?? 1;
    await worker.close();
    const seconds = (last - t0) / 1000;
    const [row] = await db.query<{ recorded: number }>('SELECT count(*)::int AS recorded FROM notifications WHERE job_id LIKE $1', [`bench-${label}-%`]);
    return { label, concurrency: used, jobs: jobs.length, completed, failed, recorded: row!.recorded, seconds: round(seconds, 2), jobsPerSecond: round(completed / seconds) };
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

/**
 * 6. One notification worker (local transport), in a process of its own, draining a queue of order
 * notifications: each job checks it was not sent, reads the user, renders, and
 * records the message in the users database. At the default concurrency
 * (NOTIFICATION_CONCURRENCY, 10), then at 50: the work waits on PostgreSQL and
 * Redis round trips, so concurrency is the knob.
 */
export async function workerScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const { storage, settings } = ctx;
  const target = await storage.extraDatabase('worker');
  const db = await openDatabase({ url: target.url, dataDir: target.dataDir });
  const kind = db.kind;
  try {
    await migrate(db, users.migrations);
    await users.seed(db);
  } finally {
    await db.close();
  }
  const prefix = `${storage.prefix}:worker`;
  // Each drain in a process of its own, as the worker is deployed: nothing the bench did before (10,000 WebSocket
  // clients, load generators) shares its event loop or heap.
  const inChild = async (label: string, concurrency?: number): Promise<Drain> => {
    const input = { database: target, redisUrl: storage.redisUrl, prefix, label, count: settings.workerJobs, concurrency };
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/worker-drain.ts', JSON.stringify(input)], {
      cwd: ROOT,
      maxBuffer: 1 << 20,
    });
    return JSON.parse(stdout.trim().split('\n').pop()!) as Drain;
  };
  const runs = [await inChild('default'), await inChild('c50', 50)];
  const [standard, wide] = runs as [Drain, Drain];
  const ok = (d: Drain) => d.failed === 0 && d.recorded === d.jobs;
  return {
    scenario: 'worker',
    title: 'Notification worker: jobs per second, one worker',
    database: kind,
    runs,
    targets: [
      {
        goal: '>= 1,000 notification jobs/s for one worker (default concurrency)',
        measured: `${standard.jobsPerSecond} jobs/s (concurrency ${standard.concurrency}, ${kind})`,
        met: standard.jobsPerSecond >= 1_000,
      },
      {
        goal: '>= 1,000 notification jobs/s for one worker (NOTIFICATION_CONCURRENCY=50)',
        measured: `${wide.jobsPerSecond} jobs/s`,
        met: wide.jobsPerSecond >= 1_000,
      },
      { goal: 'every job done once', measured: runs.map((d) => `${d.completed} completed, ${d.failed} failed, ${d.recorded} recorded of ${d.jobs}`).join('; '), met: runs.every(ok) },
    ],
  };
}
