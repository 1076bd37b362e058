import { Queue, Worker } from 'bullmq';
import {
  EntityInvalidator,
  OutboxReconciler,
  OutboxRelay,
  SAGA_JOB_OPTIONS,
  closeWorker,
  createRedis,
  pauseWorkerWhileDatabaseDown,
  readReconcilerConfig,
  throttledWarn,
  withJobContext,
  type Database,
  type Logger,
  type SubgraphRuntime,
} from '@shop/common';
import { readInventoryConfig, type InventoryConfig } from './config.js';
import { RESERVATIONS_QUEUE, RESERVATION_RESULTS_QUEUE } from './messages.js';
import { reservationProcessor } from './worker.js';

/** The background side of inventory: the reservation worker and the relay of its results. */
export interface InventoryRuntime extends SubgraphRuntime {
  config: InventoryConfig;
  relay: OutboxRelay;
  /** Sends again the reservation results Redis lost. */
  reconciler: OutboxReconciler;
  worker: Worker;
  /** Announces restocks (the reservation worker announces its own changes on its connection). */
  invalidator: EntityInvalidator;
}

export async function startInventoryRuntime(db: Database, env: NodeJS.ProcessEnv, log: Logger): Promise<InventoryRuntime> {
  const config = readInventoryConfig(env);
  const { redisUrl, prefix } = config.queue;
  const producer = createRedis(redisUrl, log, { name: 'inventory-producer' });
  const results = new Queue(RESERVATION_RESULTS_QUEUE, { connection: producer, prefix, defaultJobOptions: SAGA_JOB_OPTIONS });
  results.on('error', throttledWarn(log, 'reservation results queue error'));
  const queues = { [RESERVATION_RESULTS_QUEUE]: results };
  const relay = new OutboxRelay({ db, queues, log });
  relay.start();
  const reconciler = new OutboxReconciler({ service: 'inventory', db, queues, log, ...readReconcilerConfig(env) });
  reconciler.start();

  const consumer = createRedis(redisUrl, log, { blocking: true, name: 'inventory-worker' });
  // On the worker's connection, which holds commands while Redis is away instead of failing them: a job
  // completes only once its stock changes have reached Redis, even across an outage.
  const announcer = new EntityInvalidator('inventory', consumer, prefix, log);
  const worker = new Worker(RESERVATIONS_QUEUE, withJobContext(reservationProcessor(db, relay, announcer), log), {
    connection: consumer,
    prefix,
    concurrency: config.workerConcurrency,
  });
  worker.on('error', throttledWarn(log, 'reservation worker error'));
  worker.on('failed', (job, error) => {
    log.warn({ jobId: job?.id, attemptsMade: job?.attemptsMade, err: error }, 'reservation job failed');
  });
  // While the inventory database is down the worker waits instead of failing job after job.
  const databaseWatch = pauseWorkerWhileDatabaseDown(worker, db, log);

  return {
    config,
    relay,
    reconciler,
    worker,
    // Requests fail fast while Redis is away (the failure is logged); /ready reports the same connection.
    invalidator: new EntityInvalidator('inventory', producer, prefix, log),
    readiness: { redis: () => producer.ping() },
    async stop() {
      databaseWatch.stop();
      await closeWorker(worker, consumer);
      await reconciler.stop();
      await relay.stop();
      await results.close();
      consumer.disconnect();
      producer.disconnect();
    },
  };
}
