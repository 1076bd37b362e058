import { readInt, readQueueConfig, type QueueConfig } from '@shop/common';

/** Settings of the inventory runtime (reservation worker and outbox relay), read once at start. */
export interface InventoryConfig {
  queue: QueueConfig;
  /** Reservation jobs handled at once by this process. */
  workerConcurrency: number;
}

export function readInventoryConfig(env: NodeJS.ProcessEnv): InventoryConfig {
  return {
    queue: readQueueConfig(env),
    workerConcurrency: readInt(env, 'INVENTORY_WORKER_CONCURRENCY', 8, 1, 100),
  };
}
