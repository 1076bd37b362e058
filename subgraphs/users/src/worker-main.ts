/**
 * Notification worker process: consumes the notifications queue and delivers
 * each job once. Run as many replicas as needed; BullMQ hands each job to one.
 * SIGTERM or Ctrl-C stops taking jobs and lets running ones finish; a second
 * signal exits at once (their locks expire and another replica takes them over).
 * It answers /health, /ready (its database, Redis, and consuming) and /metrics
 * on HOST:PORT (default 4006), for Kubernetes' probes and Prometheus.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createLogger,
  createRedis,
  listen,
  main,
  migrate,
  openDatabase,
  probeRoutes,
  serveMetrics,
  shutdownTelemetry,
  startTelemetry,
  type Listening,
  type Logger,
  type ReadinessCheck,
} from '@shop/common';
import { readWorkerProcessConfig } from './notifications/config.js';
import { startNotificationWorker, type NotificationWorker } from './notifications/worker.js';
import { users } from './server.js';

function onSignals(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without waiting for running jobs');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping: finishing running jobs');
    stop().then(shutdownTelemetry).then(
      () => {
        log.info('notification worker stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'notification worker did not stop cleanly');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handle('SIGTERM'));
  process.on('SIGINT', () => handle('SIGINT'));
}

main('notification worker', async () => {
  await startTelemetry('notifications');
  const config = readWorkerProcessConfig(process.env);
  const log = createLogger('notifications', config.logLevel);
  // Handlers first: a signal that arrives while starting must not kill the process without a clean stop.
  let stopWork = async (): Promise<void> => undefined;
  let stopping = false;
  onSignals(log, () => {
    stopping = true;
    return stopWork();
  });

  if (!config.databaseUrl) {
    // Embedded PGlite belongs to the one process that opened it: the users subgraph runs the worker itself.
    // Signal handlers alone do not keep Node running.
    const keepAlive = setInterval(() => undefined, 2 ** 30);
    stopWork = async () => clearInterval(keepAlive);
    log.info('no USERS_DATABASE_URL: the users subgraph runs the notification worker in its process; idle here');
    return;
  }
  const db = await openDatabase({ url: config.databaseUrl, name: users.name });
  // A connection of its own for /ready: the worker's is a blocking one, where a PING would wait behind BullMQ.
  const probe = createRedis(config.worker.queue.redisUrl, log, { name: 'notifications-probe' });
  let worker: NotificationWorker | undefined;
  let http: Listening | undefined;
  stopWork = async () => {
    await http?.close(1_000);
    await worker?.close();
    probe.disconnect();
    await db.close();
  };
  try {
    // Served before migrating: /health answers at once, /ready once jobs are being consumed.
    http = await listen(
      probeListener({
        database: () => db.ping(),
        redis: () => probe.ping(),
        worker: async () => {
          if (!worker?.worker.isRunning()) throw new Error('not consuming jobs');
        },
      }),
      config.port,
      config.host,
      '/health',
    );
    log.info({ url: http.url }, 'probes served');
    // Idempotent and locked against the subgraph doing the same, so the worker may start first.
    await migrate(db, users.migrations);
    worker = await startNotificationWorker(db, process.env, log, { config: config.worker });
  } catch (error) {
    // A signal during start-up closed what the start was using: the signal's handler ends the process.
    if (stopping) return;
    await stopWork();
    throw error;
  }
});

/** /health, /ready with the given checks, /metrics; 404 for anything else. */
function probeListener(checks: Record<string, ReadinessCheck>) {
  const probes = probeRoutes(checks);
  return (req: IncomingMessage, res: ServerResponse) =>
    void (async () => {
      if ((await probes(req, res)) || (await serveMetrics(req, res))) return;
      res.statusCode = 404;
      res.end();
    })();
}
