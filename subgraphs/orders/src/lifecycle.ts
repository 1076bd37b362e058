import { createHash, randomUUID } from 'node:crypto';
import { GraphQLError } from 'graphql';
import { ErrorCode, badInput, enqueueOutbox, notFound, type Database, type EntityInvalidator, type OutboxMessage } from '@shop/common';
import type { CatalogClient } from './catalog.js';
import type { OrdersConfig } from './config.js';
import {
  changeOrderStatus,
  claimIdempotencyKey,
  findIdempotencyKey,
  insertPlacedOrder,
  ordersByIds,
  type IdempotencyKeyRow,
  type OrderRow,
  type OrderStatus,
} from './db.js';
import { releaseJob, reserveJob, statusEvent, statusMessages, statusNotification } from './messages.js';
import { CLIENT_SETTABLE, InvalidTransitionError, canMove } from './transitions.js';
import { parseIdempotencyKey, parseOrderRequest, parseReason, type OrderRequest } from './validation.js';

/**
 * What changing orders needs: the database, the key prefix of event channels, the relay to wake, and the
 * invalidator that announces each committed change to the router's entity cache.
 */
export interface LifecycleDeps {
  db: Database;
  prefix: string;
  relay: { wake(): void };
  invalidator: Pick<EntityInvalidator, 'invalidate'>;
}

/**
 * Announces a committed change of an order to the router's entity cache: the Order, and its user's User.orders
 * (which can filter by status). Called after the commit and before the answer or the job's completion, and before
 * the relay is woken for the change's event and notification.
 */
function announce(deps: LifecycleDeps, order: Pick<OrderRow, 'id' | 'userId'>): Promise<void> {
  return deps.invalidator.invalidate([
    { typename: 'Order', id: order.id },
    { typename: 'User', id: order.userId },
  ]);
}

/** Money amounts are GraphQL Ints (32-bit): an order's total must fit one. */
const MAX_AMOUNT = 2 ** 31 - 1;

/** Optimistic writes that lose a race are retried this often before the client is told to try again. */
const MAX_ATTEMPTS = 5;

function missing(field: string, what: string, id: string): GraphQLError {
  return new GraphQLError(`${field}: ${what} ${id} does not exist`, {
    extensions: { code: ErrorCode.NotFound, field, id },
  });
}

/** The same order asked for again: the user and the merged lines, whatever their order in the input. */
function requestHash(request: OrderRequest): string {
  const lines = request.lines
    .map((line) => [line.productId, line.quantity] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify([request.userId, lines])).digest('hex');
}

/** An idempotency key of a placement: whose, which, and for what request. */
interface KeyedRequest {
  userId: string;
  key: string;
  requestHash: string;
}

/**
 * The answer to a placement whose key already names an order: that order as it is now, or BAD_USER_INPUT when the
 * key was used for a different request.
 */
async function replay(db: Database, keyed: KeyedRequest, stored: IdempotencyKeyRow): Promise<OrderRow> {
  if (stored.requestHash !== keyed.requestHash) {
    throw badInput(
      'input.idempotencyKey',
      `"${keyed.key}" was already used for a different order (other items or another customer); use a new key for a new order`,
    );
  }
  const [order] = await ordersByIds(db, [stored.orderId]);
  if (!order) throw new Error(`order ${stored.orderId} of an idempotency key does not exist`);
  return order;
}

/**
 * Places a PENDING order: validates the input, asks users and products whether they exist and what the products
 * cost, then writes the order, its history entry and its outbox messages (the reservation job, the event and the
 * notification) in one transaction. Nothing is written when any check fails.
 *
 * With an idempotency key, the customer's key is looked up first: a retry answers the order placed with it, without
 * the look-ups. The key is recorded in the order's transaction, so of placements racing with one key one commits an
 * order and the others answer it.
 */
export async function placeOrder(
  deps: LifecycleDeps & {
    catalog: Pick<CatalogClient, 'existingUsers' | 'products'>;
    config: Pick<OrdersConfig, 'idempotencyTtlHours'>;
  },
  input: {
    userId: string;
    items: readonly { productId: string; quantity: number }[];
    idempotencyKey?: string | null | undefined;
  },
  requestId: string,
): Promise<OrderRow> {
  const request = parseOrderRequest(input);
  const key = parseIdempotencyKey(input.idempotencyKey);
  const ttlHours = deps.config.idempotencyTtlHours;
  const keyed: KeyedRequest | undefined =
    key === undefined ? undefined : { userId: request.userId, key, requestHash: requestHash(request) };
  if (keyed) {
    const stored = await findIdempotencyKey(deps.db, keyed.userId, keyed.key, ttlHours);
    if (stored) return replay(deps.db, keyed, stored);
  }
  const [users, products] = await Promise.all([
    deps.catalog.existingUsers([request.userId], requestId),
    deps.catalog.products(request.lines.map((line) => line.productId), requestId),
  ]);
  if (!users.has(request.userId)) throw missing('input.userId', 'user', request.userId);
  const lines = request.lines.map((line) => {
    const product = products.get(line.productId);
    if (!product) throw missing(`input.items[${line.index}].productId`, 'product', line.productId);
    return { ...line, product };
  });
  const [first] = lines as [(typeof lines)[number], ...typeof lines];
  const currency = first.product.price.currency;
  for (const line of lines) {
    if (line.product.price.currency !== currency) {
      throw badInput(
        `input.items[${line.index}].productId`,
        `is priced in ${line.product.price.currency} but input.items[${first.index}] in ${currency}; one order has one currency`,
      );
    }
  }

  const total = lines.reduce((sum, line) => sum + line.product.price.amount * line.quantity, 0);
  if (total > MAX_AMOUNT) {
    throw badInput('input.items', `the order would cost ${total} minor units of ${currency}; at most ${MAX_AMOUNT} fit in one order`);
  }

  const id = randomUUID();
  const items = lines.map((line) => ({
    productId: line.productId,
    productName: line.product.name,
    quantity: line.quantity,
    unitPriceAmount: line.product.price.amount,
  }));
  type Outcome = { placed: OrderRow } | { stored: IdempotencyKeyRow; keyed: KeyedRequest };
  const outcome = await deps.db.transaction(async (tx): Promise<Outcome> => {
    if (keyed) {
      // First, so a placement racing with this key waits here (having written nothing) until that one ends.
      const stored = await claimIdempotencyKey(tx, { ...keyed, orderId: id }, ttlHours);
      if (stored) return { stored, keyed };
    }
    const createdAt = await insertPlacedOrder(tx, { id, userId: request.userId, currency, lines: items });
    const placed: OrderRow = {
      id,
      userId: request.userId,
      status: 'PENDING',
      statusReason: null,
      currency,
      items: items.map((item) => ({ ...item, currency })),
      createdAt,
      updatedAt: createdAt,
    };
    await enqueueOutbox(tx, [...statusMessages(deps.prefix, placed, createdAt, null), reserveJob(placed)]);
    return { placed };
  });
  // Another placement with the key committed first: answer its order (the transaction wrote nothing).
  if ('stored' in outcome) return replay(deps.db, outcome.keyed, outcome.stored);
  const order = outcome.placed;
  await announce(deps, order);
  deps.relay.wake();
  return order;
}

/**
 * Moves `order` to `status` if nobody changed it since it was read, with the history entry and the outbox
 * messages, in one statement. Returns the changed order, or undefined when it lost a race.
 */
async function tryChange(
  deps: LifecycleDeps,
  order: OrderRow,
  status: OrderStatus,
  reason: string | null,
  extra: readonly OutboxMessage[] = [],
): Promise<OrderRow | undefined> {
  // The event is built with the order's previous time; the statement writes the change's time over it.
  const next: OrderRow = { ...order, status, statusReason: reason };
  const at = await changeOrderStatus(
    deps.db,
    { id: order.id, expected: order.status, status, reason },
    {
      timed: [statusEvent(deps.prefix, next, order.updatedAt, reason)],
      others: [statusNotification(next, reason), ...extra],
    },
  );
  if (!at) return undefined;
  await announce(deps, order);
  deps.relay.wake();
  return { ...next, updatedAt: at };
}

/** How a transition treats an order already in the target status. */
type Repeat = 'refuse' | 'answer';

/**
 * Reads the order (unless the caller just did: `current`, null when there was none), checks the transition,
 * changes it; re-reads and re-checks when another writer was faster. With `repeat: 'answer'`, an order already in
 * `status` is answered as it is, with nothing written.
 */
async function transition(
  deps: LifecycleDeps,
  id: string,
  status: OrderStatus,
  reason: string | null,
  extra: (from: OrderStatus) => OutboxMessage[] = () => [],
  current?: OrderRow | null,
  repeat: Repeat = 'refuse',
): Promise<OrderRow> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const order = attempt === 0 && current !== undefined ? current : (await ordersByIds(deps.db, [id]))[0];
    if (!order) throw notFound('Order', id);
    if (order.status === status && repeat === 'answer') return order;
    if (!canMove(order.status, status)) throw new InvalidTransitionError(id, order.status, status);
    const changed = await tryChange(deps, order, status, reason, extra(order.status));
    if (changed) return changed;
  }
  throw new GraphQLError(`Order ${id} is changing right now; please try again`, {
    extensions: { code: ErrorCode.Conflict, id },
  });
}

/**
 * Cancels a PENDING or CONFIRMED order. Inventory is always asked to release: units already reserved come back,
 * and a reservation that has not happened yet never will. `current` is the order as the caller just read it
 * (null: it found none), so it is not read twice; a stale one only costs a retry. An order already CANCELLED is
 * answered as it is (a retried cancellation, or one that lost a race to another), with nothing written.
 */
export function cancelOrder(
  deps: LifecycleDeps,
  id: string,
  reason: string | null | undefined,
  current?: OrderRow | null,
): Promise<OrderRow> {
  const why = parseReason(reason);
  return transition(deps, id, 'CANCELLED', why, () => [releaseJob(id)], current, 'answer');
}

/** Ships or delivers an order; any other target is refused. */
export async function updateOrderStatus(deps: LifecycleDeps, id: string, status: OrderStatus): Promise<OrderRow> {
  if (!CLIENT_SETTABLE.includes(status)) {
    const [order] = await ordersByIds(deps.db, [id]);
    if (!order) throw notFound('Order', id);
    throw new InvalidTransitionError(id, order.status, status);
  }
  return transition(deps, id, status, null);
}

/** A product inventory could not reserve enough of. */
export interface Shortage {
  productId: string;
  requested: number;
  available: number;
}

/** What inventory decided for an order. */
export interface ReservationResult {
  orderId: string;
  outcome: 'reserved' | 'rejected';
  reason: string | null;
  shortages: Shortage[];
}

/** A reservation result for an order this database does not have. */
export class UnknownOrderError extends Error {
  override name = 'UnknownOrderError';
}

/** Reasons stay short enough for a notification (whose worker accepts up to 2000 characters). */
const MAX_REASON_LENGTH = 1_000;

/** Joins `parts` after `prefix` up to MAX_REASON_LENGTH, then says how many more there are. */
function listed(prefix: string, parts: readonly string[]): string {
  let text = prefix;
  for (const [i, part] of parts.entries()) {
    const next = `${text}${i === 0 ? '' : ', '}${part}`;
    if (next.length > MAX_REASON_LENGTH - 20) return `${text} and ${parts.length - i} more`;
    text = next;
  }
  return text;
}

/** The rejection reason a customer reads: the products by the names they ordered. */
function rejectionReason(order: OrderRow, result: ReservationResult): string {
  if (result.shortages.length === 0) {
    return (result.reason ?? 'Inventory could not reserve the stock').slice(0, MAX_REASON_LENGTH);
  }
  const names = new Map(order.items.map((item) => [item.productId, item.productName ?? item.productId]));
  const parts = result.shortages.map(
    (s) => `${names.get(s.productId) ?? s.productId} (${s.requested} ordered, ${s.available} available)`,
  );
  return listed('Not enough stock: ', parts);
}

/**
 * Applies inventory's decision: a PENDING order becomes CONFIRMED or REJECTED. Anything else is a repeated or
 * late delivery; only a reservation made for an order cancelled meanwhile needs action (release the units).
 */
export async function applyReservationResult(
  deps: LifecycleDeps,
  result: ReservationResult,
): Promise<'changed' | 'released' | 'ignored'> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const [order] = await ordersByIds(deps.db, [result.orderId]);
    if (!order) throw new UnknownOrderError(`order ${result.orderId} does not exist`);
    if (order.status === 'PENDING') {
      const changed =
        result.outcome === 'reserved'
          ? await tryChange(deps, order, 'CONFIRMED', null)
          : await tryChange(deps, order, 'REJECTED', rejectionReason(order, result));
      if (changed) return 'changed';
      continue;
    }
    if (order.status === 'CANCELLED' && result.outcome === 'reserved') {
      // One statement: no transaction needed.
      await enqueueOutbox(deps.db, [releaseJob(order.id)]);
      deps.relay.wake();
      return 'released';
    }
    // A repeated delivery may be the retry of a run that changed the order and died before announcing it.
    await announce(deps, order);
    return 'ignored';
  }
  throw new Error(`order ${result.orderId} kept changing while applying its reservation result`);
}
