import type { DefaultJobOptions, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from './logger.js';

/** Every BullMQ queue of the shop, by what it carries. */
export const QUEUES = {
  /** `reserve` and `release` jobs from orders, for inventory. */
  reservations: 'inventory-reservations',
  /** `reserved` and `rejected` jobs from inventory, for orders. */
  reservationResults: 'order-reservation-results',
  /** One job per user-facing event, for the notification worker. */
  notifications: 'notifications',
} as const;

/**
 * Saga jobs retry with exponential backoff for transient failures. Completed jobs stay a week so their
 * ids keep deduplicating a repeated relay; failed jobs stay until someone looks at them.
 */
export const SAGA_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 7 * 24 * 3600 },
};

/** Logs at most one message every 10 s: queues and workers report one connection error many times a second. */
export function throttledWarn(log: Logger, message: string): (error: Error) => void {
  let last = 0;
  return (error) => {
    if (Date.now() - last < 10_000) return;
    last = Date.now();
    log.warn({ err: error }, message);
  };
}

/**
 * Lets the current jobs finish when Redis is there to record them; when it is not, waiting would never
 * end, so the worker stops at once and its jobs come back as stalled to another worker.
 */
export async function closeWorker(worker: Worker, connection: Redis): Promise<void> {
  await worker.close(connection.status !== 'ready');
}
