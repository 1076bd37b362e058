import { UnrecoverableError, type Job } from 'bullmq';
import { enqueueOutbox, isUuid, type Database, type EntityInvalidator } from '@shop/common';
import { releaseStock, reserveStock, type ReservationLine } from './db.js';
import { resultJob } from './messages.js';

/** Orders never sends more lines or units than it accepts from clients. */
const MAX_LINES = 50;
const MAX_QUANTITY = 1000;

export type ReservationCommand =
  | { kind: 'reserve'; orderId: string; lines: ReservationLine[] }
  | { kind: 'release'; orderId: string };

function orderIdOf(data: Record<string, unknown>): string {
  const { orderId } = data;
  if (typeof orderId !== 'string' || !isUuid(orderId)) throw new UnrecoverableError('orderId is not a UUID');
  return orderId.toLowerCase();
}

function lineOf(value: unknown, index: number): ReservationLine {
  const { productId, quantity } = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  if (typeof productId !== 'string' || !isUuid(productId)) {
    throw new UnrecoverableError(`lines[${index}].productId is not a UUID`);
  }
  if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) {
    throw new UnrecoverableError(`lines[${index}].quantity is not an integer from 1 to ${MAX_QUANTITY}`);
  }
  return { productId: productId.toLowerCase(), quantity };
}

/** Reads a `reserve` / `release` job; a malformed one can never succeed, so it fails without retries. */
export function parseReservationCommand(name: string, data: unknown): ReservationCommand {
  if (typeof data !== 'object' || data === null) throw new UnrecoverableError('payload is not an object');
  const payload = data as Record<string, unknown>;
  if (name === 'release') return { kind: 'release', orderId: orderIdOf(payload) };
  if (name !== 'reserve') throw new UnrecoverableError(`unknown job name "${name}"`);
  const orderId = orderIdOf(payload);
  const { lines } = payload;
  if (!Array.isArray(lines) || lines.length < 1 || lines.length > MAX_LINES) {
    throw new UnrecoverableError(`lines must be a list of 1 to ${MAX_LINES} lines`);
  }
  const parsed = lines.map(lineOf);
  if (new Set(parsed.map((line) => line.productId)).size !== parsed.length) {
    throw new UnrecoverableError('lines name a product more than once');
  }
  return { kind: 'reserve', orderId, lines: parsed };
}

/** What a command did: the outcome, for the job's return value and logs, and the products whose stock it changed. */
export interface CommandResult {
  outcome: string;
  productIds: readonly string[];
}

/**
 * Carries out one command in one transaction; a reservation's result goes into the outbox in the same
 * transaction. A repeated reservation names its products again: the run that decided it may have committed and
 * died before it announced the change.
 */
export async function runReservationCommand(db: Database, command: ReservationCommand): Promise<CommandResult> {
  return db.transaction(async (tx) => {
    if (command.kind === 'release') {
      const { units, productIds } = await releaseStock(tx, command.orderId);
      return { outcome: `released ${units} units`, productIds };
    }
    const ordered = command.lines.map((line) => line.productId);
    const decision = await reserveStock(tx, command.orderId, command.lines);
    if (decision.outcome === 'repeated') return { outcome: 'already decided', productIds: ordered };
    await enqueueOutbox(tx, [resultJob(command.orderId, decision)]);
    return { outcome: decision.outcome, productIds: decision.outcome === 'reserved' ? ordered : [] };
  });
}

/**
 * Processes one job of the reservations queue. Database errors propagate, so BullMQ retries them. The stock
 * changes are announced to the router's entity cache after the commit and before the relay is woken, so a
 * client that sees the order confirmed reads the new stock. The relay is woken only when the command queued a
 * result: a release (one per cancelled order) or a repeated reservation queues nothing, and waking the relay
 * for it cost an empty relay transaction each.
 */
export function reservationProcessor(db: Database, relay: { wake(): void }, invalidator: Pick<EntityInvalidator, 'invalidate'>) {
  return async (job: Job): Promise<string> => {
    const command = parseReservationCommand(job.name, job.data);
    const { outcome, productIds } = await runReservationCommand(db, command);
    await invalidator.invalidate(productIds.map((id) => ({ typename: 'Product', id })));
    if (command.kind === 'reserve' && (outcome === 'reserved' || outcome === 'rejected')) relay.wake();
    return outcome;
  };
}
