import type { Queue } from 'bullmq';
import { expect } from 'vitest';
import type { Database } from '@shop/common';
import type { OrderStatusPayload } from '../src/notifications/jobs.js';
import type { OutgoingMessage, Transport } from '../src/notifications/transport.js';

/** A transport that remembers what it was asked to send; `failures` first calls throw a transient error. */
export class RecordingTransport implements Transport {
  readonly name = 'LOCAL';
  readonly calls: { at: number; message: OutgoingMessage }[] = [];

  constructor(private failures = 0) {}

  get sent(): OutgoingMessage[] {
    return this.calls.map((c) => c.message);
  }

  async send(message: OutgoingMessage): Promise<void> {
    this.calls.push({ at: Date.now(), message });
    if (this.failures > 0) {
      this.failures--;
      throw new Error('connection reset by mail relay');
    }
  }

  async close(): Promise<void> {}
}

/** A transport whose sends hang until `release()`: a worker stuck mid-job. */
export class BlockingTransport implements Transport {
  readonly name = 'LOCAL';
  readonly sent: OutgoingMessage[] = [];
  private releaseAll!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.releaseAll = resolve));

  async send(message: OutgoingMessage): Promise<void> {
    this.sent.push(message);
    await this.gate;
  }

  release(): void {
    this.releaseAll();
  }

  async close(): Promise<void> {}
}

export function orderPayload(userId: string, orderId: string, status: OrderStatusPayload['status']): OrderStatusPayload {
  return {
    userId,
    orderId,
    status,
    reason: status === 'REJECTED' ? 'Not enough stock for <Mug & Co>' : null,
    items: [
      { productId: 'p-1', productName: 'Mug <Deluxe> & "Co"', quantity: 2, unitPrice: { amount: 1250, currency: 'USD' } },
      { productId: 'p-2', productName: null, quantity: 1, unitPrice: { amount: 999, currency: 'USD' } },
    ],
    total: { amount: 3499, currency: 'USD' },
  };
}

export async function notificationCount(db: Database, jobId: string): Promise<number> {
  const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM notifications WHERE job_id = $1', [jobId]);
  return rows[0]?.n ?? 0;
}

/** Waits until the job reaches `state` and returns it fresh. */
export async function waitForState(queue: Queue, jobId: string, state: 'completed' | 'failed', timeout = 15_000) {
  await expect.poll(async () => (await queue.getJob(jobId))?.getState(), { timeout, interval: 50 }).toBe(state);
  return (await queue.getJob(jobId))!;
}
