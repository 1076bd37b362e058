import type { Database, Logger } from '@shop/common';
import { pruneIdempotencyKeys } from './db.js';

export interface KeyPrunerOptions {
  db: Database;
  /** Keys older than this are deleted: the TTL placeOrder honours. */
  ttlHours: number;
  log: Logger;
  /** Pause between runs; each run waits 0.5 to 1.5 times it, so replicas started together spread out. */
  intervalMs?: number;
  /** Rows per DELETE; a run deletes batches until one comes back short, at most `maxBatches`. */
  batchSize?: number;
  maxBatches?: number;
}

/**
 * Deletes expired placeOrder idempotency keys now and then. Cheap and safe on any number of replicas: small DELETEs
 * that skip rows another replica is deleting; a key that outlives its TTL a little longer is only ignored.
 */
export class IdempotencyKeyPruner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private started = false;
  private stopped = false;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly maxBatches: number;

  constructor(private readonly options: KeyPrunerOptions) {
    this.intervalMs = options.intervalMs ?? 5 * 60_000;
    this.batchSize = options.batchSize ?? 500;
    this.maxBatches = options.maxBatches ?? 20;
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule();
  }

  /** Deletes expired keys in batches; returns how many. Used by the timer, and by tests. */
  async pruneNow(): Promise<number> {
    let total = 0;
    for (let batch = 0; batch < this.maxBatches; batch++) {
      const deleted = await pruneIdempotencyKeys(this.options.db, this.options.ttlHours, this.batchSize);
      total += deleted;
      if (deleted < this.batchSize || this.stopped) break;
    }
    return total;
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  private schedule(): void {
    const delay = Math.round(this.intervalMs * (0.5 + Math.random()));
    this.timer = setTimeout(() => void this.tick(), delay);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    this.running = this.pruneNow();
    try {
      const deleted = await this.running;
      if (deleted > 0) this.options.log.debug({ deleted }, 'pruned expired idempotency keys');
    } catch (error) {
      this.options.log.warn({ err: error }, 'pruning expired idempotency keys failed; trying again later');
    } finally {
      this.running = undefined;
      if (!this.stopped) this.schedule();
    }
  }
}
