import { DateTimeScalar, badInput, decodeCursor, isUuid, pageSize, parseId, toConnection } from '@shop/common';
import type { Context } from './context.js';
import type { OrderItemRow, OrderKeyset, OrderRow } from './db.js';
import { listOrders } from './db.js';
import type { Resolvers } from './generated/resolvers.js';
import { cancelOrder, placeOrder, updateOrderStatus } from './lifecycle.js';
import { runtimeOf } from './runtime-of.js';
import { subscriptionResolvers } from './subscriptions.js';

/** Validates `after`: a cursor this subgraph made holds an order's createdAt and id. */
function orderCursor(after: string | null | undefined): OrderKeyset | undefined {
  const cursor = decodeCursor(after);
  if (!cursor) return undefined;
  const createdAt = typeof cursor.k === 'string' ? new Date(cursor.k) : undefined;
  if (!createdAt || Number.isNaN(createdAt.getTime()) || !isUuid(cursor.id)) {
    throw badInput('after', 'is not a cursor returned by this field (use pageInfo.endCursor)');
  }
  return { createdAt: createdAt.toISOString(), id: cursor.id.toLowerCase() };
}

const cursorOf = (order: OrderRow) => ({ k: order.createdAt.toISOString(), id: order.id });

const subtotalOf = (item: OrderItemRow) => item.unitPriceAmount * item.quantity;

/** Later reads of a changed order in the same request must see the change. */
function primed(context: Context, order: OrderRow): OrderRow {
  context.loaders.order.clear(order.id).prime(order.id, order);
  context.loaders.statusHistory.clear(order.id);
  return order;
}

export const resolvers: Resolvers = {
  DateTime: DateTimeScalar,
  Subscription: subscriptionResolvers,
  Query: {
    order: (_parent, { id }, { loaders }) => loaders.order.load(parseId('id', id)),
    orders: async (_parent, { first, after, status, userId }, { db }) => {
      const limit = pageSize(first);
      const rows = await listOrders(db, limit + 1, {
        after: orderCursor(after),
        status: status ?? undefined,
        userId: userId === null || userId === undefined ? undefined : parseId('userId', userId),
      });
      return toConnection(rows, limit, cursorOf);
    },
  },
  Mutation: {
    placeOrder: async (_parent, { input }, context) =>
      primed(context, await placeOrder(runtimeOf(context), input, context.requestId)),
    cancelOrder: async (_parent, { id, reason }, context) =>
      primed(context, await cancelOrder(runtimeOf(context), parseId('id', id), reason)),
    updateOrderStatus: async (_parent, { id, status }, context) =>
      primed(context, await updateOrderStatus(runtimeOf(context), parseId('id', id), status)),
  },
  Order: {
    // A malformed id in a representation cannot match a row: answer null rather than fail the batch.
    __resolveReference: ({ id }, { loaders }) => (isUuid(id) ? loaders.order.load(id.toLowerCase()) : null),
    user: (order) => ({ id: order.userId }),
    total: (order) => ({
      amount: order.items.reduce((sum, item) => sum + subtotalOf(item), 0),
      currency: order.currency,
    }),
    statusHistory: (order, _args, { loaders }) => loaders.statusHistory.load(order.id),
  },
  OrderItem: {
    product: (item) => ({ id: item.productId }),
    unitPrice: (item) => ({ amount: item.unitPriceAmount, currency: item.currency }),
    subtotal: (item) => ({ amount: subtotalOf(item), currency: item.currency }),
  },
  User: {
    // The users subgraph owns users; any well-formed id is one this subgraph can list orders for.
    __resolveReference: ({ id }) => (isUuid(id) ? { id: id.toLowerCase() } : null),
    orders: async (user, { first, after, status }, { loaders }) => {
      const limit = pageSize(first);
      const rows = await loaders.userOrders.load({
        userId: user.id,
        limit: limit + 1,
        after: orderCursor(after),
        status: status ?? undefined,
      });
      return toConnection(rows, limit, cursorOf);
    },
  },
};
