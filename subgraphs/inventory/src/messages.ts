import { QUEUES, currentRequestId, type OutboxMessage } from '@shop/common';
import type { Shortage } from './db.js';

/** Consumed here: `reserve` and `release` jobs from orders. */
export const RESERVATIONS_QUEUE = QUEUES.reservations;
/** Produced here, through the outbox: `reserved` and `rejected` jobs for orders. */
export const RESERVATION_RESULTS_QUEUE = QUEUES.reservationResults;

/** Payload of a `reserved` / `rejected` job. */
export interface ReservationResultJob {
  orderId: string;
  reason?: string;
  shortages?: Shortage[];
  /** The request that placed the order, carried on for the logs. */
  requestId?: string;
}

/** The decision for an order, for orders; one job id per order, so relaying it twice is one job. */
export function resultJob(
  orderId: string,
  decision: { outcome: 'reserved' } | { outcome: 'rejected'; reason: string; shortages: Shortage[] },
): OutboxMessage {
  const payload: ReservationResultJob =
    decision.outcome === 'reserved' ? { orderId } : { orderId, reason: decision.reason, shortages: decision.shortages };
  const requestId = currentRequestId();
  if (requestId) payload.requestId = requestId;
  return { kind: 'job', queue: RESERVATION_RESULTS_QUEUE, name: decision.outcome, jobId: `result-${orderId}`, payload };
}
