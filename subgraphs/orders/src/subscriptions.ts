import { PushStream, forbidden, mayActFor, notFound, parseId, requireSelfOrAdmin, requireUser, type PublishedEvent } from '@shop/common';
import type { Context } from './context.js';
import { ordersByIds, type OrderRow } from './db.js';
import { orderEventsChannel, type OrderStatusEvent } from './messages.js';
import { runtimeOf } from './runtime-of.js';

type Payload<K extends string> = Record<K, OrderRow>;

/**
 * Follows order status events from Redis (published by any orders replica) and
 * sends each changed order, read fresh from the database. Reads run one after
 * another, so a client sees statuses in the order they happened; a status
 * already sent for an order (an event relayed twice) is not sent again.
 * Unsubscribing stops listening at once, even while no event arrives.
 */
async function follow<K extends string>(
  context: Context,
  field: K,
  matches: (event: OrderStatusEvent) => boolean,
  initialOrderId?: string,
): Promise<AsyncIterableIterator<Payload<K>>> {
  const runtime = runtimeOf(context);
  const sent = new Map<string, string>();
  let stopListening: () => void = () => undefined;
  const out = new PushStream<Payload<K>>(() => stopListening());
  let reads: Promise<unknown> = Promise.resolve();

  const send = (order: OrderRow | null) => {
    if (!order || sent.get(order.id) === order.status) return;
    sent.set(order.id, order.status);
    out.push({ [field]: order } as Payload<K>);
  };
  const read = (orderId: string) => {
    const next = reads.then(() => ordersByIds(context.db, [orderId]));
    reads = next.then(([order]) => send(order ?? null)).catch((error: unknown) => {
      context.log.error({ err: error }, 'order subscription failed to read an order');
      out.end();
    });
    return next;
  };

  // Listen before the first read, so a change between the two cannot be missed.
  stopListening = await runtime.events.listen(orderEventsChannel(runtime.prefix), (event: PublishedEvent) => {
    const payload = event.payload as OrderStatusEvent;
    if (matches(payload)) void read(payload.orderId);
  });
  if (initialOrderId) {
    const [current] = await read(initialOrderId);
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
        return follow(context, 'orderStatusChanged', (event) => event.orderId === id, id);
      });
    },
  },
  orderUpdates: {
    subscribe: (_parent: unknown, args: { userId: string }, context: Context) => {
      const id = parseId('userId', args.userId);
      requireSelfOrAdmin(context, id, "follow this user's orders");
      return follow(context, 'orderUpdates', (event) => event.userId === id);
    },
  },
};
