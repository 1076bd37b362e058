import { Queue, Worker, type DefaultJobOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { OutboxRelay, createRedis, type Database, type Logger, type SubgraphRuntime } from '@shop/common';
import { readInventoryConfig, type InventoryConfig } from './config.js';
import { RESERVATIONS_QUEUE, RESERVATION_RESULTS_QUEUE } from './messages.js';
import { reservationProcessor } from './worker.js';

/** The background side of inventory: the reservation worker and the relay of its results. */
export interface InventoryRuntime extends SubgraphRuntime {
  config: InventoryConfig;
  relay: OutboxRelay;
  worker: Worker;
}

/**
 * Retries with exponential backoff for transient failures. Completed jobs stay a week so their ids keep
 * deduplicating a repeated relay; failed jobs stay until someone looks at them.
 */
const RESULT_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 7 * 24 * 3600 },
};

/** Logs at most one message every 10 s: a worker reports the same connection error many times a second. */
function throttled(log: Logger, message: string): (error: Error) => void {
  let last = 0;
  return (error) => {
    if (Date.now() - last < 10_000) return;
    last = Date.now();
    log.warn({ err: error }, message);
  };
}

/**
 * Lets the current jobs finish when Redis is there to record them; when it is not, waiting would never end,
 * so the worker stops at once and its jobs come back as stalled to another worker.
 */
async function closeWorker(worker: Worker, connection: Redis): Promise<void> {
  await worker.close(connection.status !== 'ready');
}

export async function startInventoryRuntime(db: Database, env: NodeJS.ProcessEnv, log: Logger): Promise<InventoryRuntime> {
  const config = readInventoryConfig(env);
  const { redisUrl, prefix } = config.queue;
  const producer = createRedis(redisUrl, log, { name: 'inventory-producer' });
  const results = new Queue(RESERVATION_RESULTS_QUEUE, { connection: producer, prefix, defaultJobOptions: RESULT_JOB_OPTIONS });
  results.on('error', throttled(log, 'reservation results queue error'));
  const relay = new OutboxRelay({ db, queues: { [RESERVATION_RESULTS_QUEUE]: results }, log });
  relay.start();

  const consumer = createRedis(redisUrl, log, { blocking: true, name: 'inventory-worker' });
  const worker = new Worker(RESERVATIONS_QUEUE, reservationProcessor(db, relay), {
    connection: consumer,
    prefix,
    concurrency: config.workerConcurrency,
  });
  worker.on('error', throttled(log, 'reservation worker error'));
  worker.on('failed', (job, error) => {
    log.warn({ jobId: job?.id, attemptsMade: job?.attemptsMade, err: error }, 'reservation job failed');
  });

  return {
    config,
    relay,
    worker,
    async stop() {
      await closeWorker(worker, consumer);
      await relay.stop();
      await results.close();
      consumer.disconnect();
      producer.disconnect();
    },
  };
}
