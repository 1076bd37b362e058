import {
  PushStream,
  forbidden,
  mayActFor,
  notFound,
  parseId,
  requireSelfOrAdmin,
  requireUser,
  type PublishedEvent,
  type Queryable,
} from '@shop/common';
import type { Context } from './context.js';
import { ordersByIds, type OrderRow } from './db.js';
import { orderEventsChannel, type OrderStatusEvent } from './messages.js';
import { runtimeOf } from './runtime-of.js';

type Payload<K extends string> = Record<K, OrderRow>;

/**
 * Reads of single orders shared by every subscription of the process. A read joins one of the same order that has
 * not started yet (all the subscriptions one event wakes, in the same tick, get one statement); otherwise it starts
 * after the read of that order in flight. Every read therefore starts after it was asked for, and the reads of one
 * order run one after another, so they return its committed states in order.
 */
export class OrderReads {
  private readonly chains = new Map<string, { tail: Promise<unknown>; waiting: Promise<OrderRow | null> | undefined }>();

  constructor(private readonly db: Queryable) {}

  read(orderId: string): Promise<OrderRow | null> {
    let chain = this.chains.get(orderId);
    if (chain?.waiting) return chain.waiting;
    if (!chain) {
      chain = { tail: Promise.resolve(), waiting: undefined };
      this.chains.set(orderId, chain);
    }
    const current = chain;
    const result = current.tail
      .then(() => {
        current.waiting = undefined;
        return ordersByIds(this.db, [orderId]);
      })
      .then(([order]) => order ?? null);
    const tail = result.catch(() => undefined);
    current.waiting = result;
    current.tail = tail;
    void tail.then(() => {
      if (current.tail === tail) this.chains.delete(orderId);
    });
    return result;
  }
}

const readsByDb = new WeakMap<Queryable, OrderReads>();

/** The shared order reads of this database handle (one per process). */
export function orderReadsOf(db: Queryable): OrderReads {
  let reads = readsByDb.get(db);
  if (!reads) {
    reads = new OrderReads(db);
    readsByDb.set(db, reads);
  }
  return reads;
}

/** The order an event carries, when it carries the one it is about (events of older replicas carry none). */
function orderOf(event: OrderStatusEvent): OrderRow | undefined {
  const order = event.order;
  if (order?.id !== event.orderId) return undefined;
  return { ...order, createdAt: new Date(order.createdAt), updatedAt: new Date(order.updatedAt) };
}

/**
 * Follows order status events from Redis (published by any orders replica) and
 * sends each changed order: as the event carries it (written in the change's
 * transaction), or read fresh from the database for an event that carries none
 * (that read is shared with the other subscriptions the event wakes, see
 * OrderReads). Each subscription sends in the order of its events, after its
 * first read, so a client sees statuses in the order they happened. A status
 * already sent for an order (an event relayed twice) and a state older than one
 * sent (events relayed out of order) are not sent. Only the events of the
 * followed order or user reach the subscription. Unsubscribing stops listening
 * at once, even while no event arrives.
 */
async function follow<K extends string>(
  context: Context,
  field: K,
  filter: { field: 'orderId' | 'userId'; value: string },
  initialOrderId?: string,
): Promise<AsyncIterableIterator<Payload<K>>> {
  const runtime = runtimeOf(context);
  const orders = orderReadsOf(context.db);
  /** Per order: the status and change time last sent. */
  const sent = new Map<string, { status: string; at: number }>();
  let stopListening: () => void = () => undefined;
  const out = new PushStream<Payload<K>>(() => stopListening());
  let reads: Promise<unknown> = Promise.resolve();

  const send = (order: OrderRow | null) => {
    if (!order) return;
    const at = order.updatedAt.getTime();
    const last = sent.get(order.id);
    if (last && (last.status === order.status || at < last.at)) return;
    sent.set(order.id, { status: order.status, at });
    // The subscription's loaders live as long as it does: the history read for an earlier event is stale now.
    context.loaders.statusHistory.clear(order.id);
    out.push({ [field]: order } as Payload<K>);
  };
  /** Sends `next`'s order after everything asked for before it. */
  const inTurn = (next: Promise<OrderRow | null>) => {
    reads = reads
      .then(() => next)
      .then(send)
      .catch((error: unknown) => {
        context.log.error({ err: error }, 'order subscription failed to read an order');
        out.end();
      });
    return next;
  };

  // Listen before the first read, so a change between the two cannot be missed.
  stopListening = await runtime.events.listen(
    orderEventsChannel(runtime.prefix),
    (event: PublishedEvent) => {
      const payload = event.payload as OrderStatusEvent;
      const order = orderOf(payload);
      // Asked for now (after the event), sent in turn.
      void inTurn(order ? Promise.resolve(order) : orders.read(payload.orderId));
    },
    filter,
  );
  if (initialOrderId) {
    const current = await inTurn(orders.read(initialOrderId));
    if (!current) {
      await out.return();
      throw notFound('Order', initialOrderId);
    }
  }
  return out;
}

export const subscriptionResolvers = {
  orderStatusChanged: {
    subscribe: (_parent: unknown, args: { orderId: string }, context: Context) => {
      const id = parseId('orderId', args.orderId);
      const identity = requireUser(context);
      // Checked before listening; an unknown order stays NOT_FOUND (from follow's first read).
      return ordersByIds(context.db, [id]).then(([order]) => {
        if (order && !mayActFor(identity, order.userId)) {
          throw forbidden("Only the order's customer or an administrator can follow it.");
        }
        return follow(context, 'orderStatusChanged', { field: 'orderId', value: id }, id);
      });
    },
  },
  orderUpdates: {
    subscribe: (_parent: unknown, args: { userId: string }, context: Context) => {
      const id = parseId('userId', args.userId);
      requireSelfOrAdmin(context, id, "follow this user's orders");
      return follow(context, 'orderUpdates', { field: 'userId', value: id });
    },
  },
};
