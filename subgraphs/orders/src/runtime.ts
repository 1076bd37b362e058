import { Queue, Worker, type DefaultJobOptions } from 'bullmq';
import {
  EntityInvalidator,
  OutboxReconciler,
  OutboxRelay,
  RedisEvents,
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
import { CatalogClient } from './catalog.js';
import { IdempotencyKeyPruner } from './key-pruner.js';
import { readOrdersConfig, type OrdersConfig } from './config.js';
import type { LifecycleDeps } from './lifecycle.js';
import { NOTIFICATIONS_QUEUE, RESERVATIONS_QUEUE, RESERVATION_RESULTS_QUEUE } from './messages.js';
import { reservationResultProcessor } from './worker.js';

/** The background side of orders: the outbox relay, the reservation results worker, and the look-up client. */
export interface OrdersRuntime extends SubgraphRuntime, LifecycleDeps {
  config: OrdersConfig;
  catalog: CatalogClient;
  relay: OutboxRelay;
  /** Sends again the saga and notification jobs Redis lost. */
  reconciler: OutboxReconciler;
  worker: Worker;
  /** Order status events from every replica, for subscriptions. */
  events: RedisEvents;
  /** Announces the changes mutations commit (the saga's worker announces its own on its connection). */
  invalidator: EntityInvalidator;
}



/** As the users subgraph sets them for its own notification jobs: completed kept a day, failed ones kept. */
function notificationJobOptions(config: OrdersConfig): DefaultJobOptions {
  return {
    attempts: config.notificationAttempts,
    backoff: { type: 'exponential', delay: config.notificationBackoffMs },
    removeOnComplete: { age: 86_400, count: 10_000 },
    removeOnFail: false,
  };
}



export async function startOrdersRuntime(db: Database, env: NodeJS.ProcessEnv, log: Logger): Promise<OrdersRuntime> {
  const config = readOrdersConfig(env);
  const { redisUrl, prefix } = config.queue;
  const producer = createRedis(redisUrl, log, { name: 'orders-producer' });
  const queues = {
    [RESERVATIONS_QUEUE]: new Queue(RESERVATIONS_QUEUE, { connection: producer, prefix, defaultJobOptions: SAGA_JOB_OPTIONS }),
    [NOTIFICATIONS_QUEUE]: new Queue(NOTIFICATIONS_QUEUE, {
      connection: producer,
      prefix,
      defaultJobOptions: notificationJobOptions(config),
    }),
  };
  for (const queue of Object.values(queues)) queue.on('error', throttledWarn(log, `queue ${queue.name} error`));
  const relay = new OutboxRelay({ db, queues, publisher: producer, log });
  relay.start();
  const reconciler = new OutboxReconciler({ service: 'orders', db, queues, log, ...readReconcilerConfig(env) });
  reconciler.start();
  // Deletes placeOrder idempotency keys past ORDERS_IDEMPOTENCY_TTL_HOURS, a few hundred rows at a time, every few minutes.
  const keyPruner = new IdempotencyKeyPruner({ db, ttlHours: config.idempotencyTtlHours, log });
  keyPruner.start();

  const catalog = new CatalogClient({
    usersUrl: config.usersUrl,
    productsUrl: config.productsUrl,
    timeoutMs: config.lookupTimeoutMs,
    retries: config.lookupRetries,
    log,
    identitySecret: config.identitySecret,
  });
  // Mutations fail fast while Redis is away (the failure is logged); /ready reports the same connection.
  const invalidator = new EntityInvalidator('orders', producer, prefix, log);
  const deps: LifecycleDeps = { db, prefix, relay, invalidator };

  const consumer = createRedis(redisUrl, log, { blocking: true, name: 'orders-worker' });
  // The saga's changes are announced on the worker's connection, which holds commands while Redis is away
  // instead of failing them: a job completes only once its change has reached Redis, even across an outage.
  const sagaDeps: LifecycleDeps = { ...deps, invalidator: new EntityInvalidator('orders', consumer, prefix, log) };
  const worker = new Worker(RESERVATION_RESULTS_QUEUE, withJobContext(reservationResultProcessor(sagaDeps), log), {
    connection: consumer,
    prefix,
    concurrency: config.workerConcurrency,
  });
  worker.on('error', throttledWarn(log, 'reservation results worker error'));
  worker.on('failed', (job, error) => {
    log.warn({ jobId: job?.id, attemptsMade: job?.attemptsMade, err: error }, 'reservation result job failed');
  });
  // While the orders database is down the worker waits instead of failing job after job.
  const databaseWatch = pauseWorkerWhileDatabaseDown(worker, db, log);

  const events = new RedisEvents(createRedis(redisUrl, log, { blocking: true, name: 'orders-events' }), log);

  return {
    ...deps,
    invalidator,
    config,
    catalog,
    relay,
    reconciler,
    worker,
    events,
    readiness: { redis: () => producer.ping() },
    async stop() {
      events.close();
      databaseWatch.stop();
      await closeWorker(worker, consumer);
      await reconciler.stop();
      await keyPruner.stop();
      await relay.stop();
      await Promise.all(Object.values(queues).map((queue) => queue.close()));
      consumer.disconnect();
      producer.disconnect();
    },
  };
}
