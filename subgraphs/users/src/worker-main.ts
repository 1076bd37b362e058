/**
 * Notification worker process: consumes the notifications queue and delivers
 * each job once. Run as many replicas as needed; BullMQ hands each job to one.
 * SIGTERM or Ctrl-C stops taking jobs and lets running ones finish; a second
 * signal exits at once (their locks expire and another replica takes them over).
 */
import { createLogger, main, migrate, openDatabase, shutdownTelemetry, startTelemetry, type Logger } from '@shop/common';
import { readWorkerProcessConfig } from './notifications/config.js';
import { startNotificationWorker } from './notifications/worker.js';
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
  onSignals(log, () => stopWork());

  if (!config.databaseUrl) {
    // Embedded PGlite belongs to the one process that opened it: the users subgraph runs the worker itself.
    // Signal handlers alone do not keep Node running.
    const keepAlive = setInterval(() => undefined, 2 ** 30);
    stopWork = async () => clearInterval(keepAlive);
    log.info('no USERS_DATABASE_URL: the users subgraph runs the notification worker in its process; idle here');
    return;
  }
  const db = await openDatabase({ url: config.databaseUrl, name: users.name });
  stopWork = () => db.close();
  try {
    // Idempotent and locked against the subgraph doing the same, so the worker may start first.
    await migrate(db, users.migrations);
    const worker = await startNotificationWorker(db, process.env, log, { config: config.worker });
    stopWork = async () => {
      await worker.close();
      await db.close();
    };
  } catch (error) {
    await db.close();
    throw error;
  }
});
