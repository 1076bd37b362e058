import { UnrecoverableError, type Job } from 'bullmq';
import { isUuid } from '@shop/common';
import { UnknownOrderError, applyReservationResult, type LifecycleDeps, type ReservationResult, type Shortage } from './lifecycle.js';

function isShortage(value: unknown): value is Shortage {
  if (typeof value !== 'object' || value === null) return false;
  const { productId, requested, available } = value as Record<string, unknown>;
  return typeof productId === 'string' && Number.isInteger(requested) && Number.isInteger(available);
}

/** Reads a `reserved` / `rejected` job; a malformed one can never succeed, so it fails without retries. */
export function parseReservationResult(name: string, data: unknown): ReservationResult {
  if (name !== 'reserved' && name !== 'rejected') throw new UnrecoverableError(`unknown job name "${name}"`);
  if (typeof data !== 'object' || data === null) throw new UnrecoverableError('payload is not an object');
  const { orderId, reason, shortages } = data as Record<string, unknown>;
  if (typeof orderId !== 'string' || !isUuid(orderId)) throw new UnrecoverableError('orderId is not a UUID');
  if (reason !== undefined && reason !== null && typeof reason !== 'string') {
    throw new UnrecoverableError('reason is not a string');
  }
  if (shortages !== undefined && !(Array.isArray(shortages) && shortages.every(isShortage))) {
    throw new UnrecoverableError('shortages is not a list of { productId, requested, available }');
  }
  return { orderId: orderId.toLowerCase(), outcome: name, reason: reason ?? null, shortages: shortages ?? [] };
}

/** Processes one job of the reservation results queue. Database errors propagate, so BullMQ retries them. */
export function reservationResultProcessor(deps: LifecycleDeps) {
  return async (job: Job): Promise<string> => {
    const result = parseReservationResult(job.name, job.data);
    try {
      return await applyReservationResult(deps, result);
    } catch (error) {
      if (error instanceof UnknownOrderError) throw new UnrecoverableError(error.message);
      throw error;
    }
  };
}
