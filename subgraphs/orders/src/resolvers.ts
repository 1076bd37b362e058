import {
  DateTimeScalar,
  badInput,
  decodeCursor,
  forbidden,
  isUuid,
  mayActFor,
  pageSize,
  parseId,
  requireAdmin,
  requireSelfOrAdmin,
  requireUser,
  toConnection,
} from '@shop/common';
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

/** Throws FORBIDDEN unless the caller owns the order or is an administrator (anonymous: UNAUTHENTICATED). */
export function requireOrderAccess(context: Context, order: OrderRow, what: string): void {
  if (!mayActFor(requireUser(context), order.userId)) throw forbidden(`Only the order's customer or an administrator can ${what}.`);
}

/** Whom an order is placed for: the caller, or the user an administrator names. */
function customerOf(context: Context, userId: string | null | undefined): string {
  const identity = requireUser(context);
  if (identity.role === 'SERVICE') throw forbidden('Orders are placed by customers or administrators.');
  if (userId === null || userId === undefined) return identity.sub;
  const id = parseId('input.userId', userId);
  if (id !== identity.sub && identity.role !== 'ADMIN') throw forbidden('A customer can only place orders for themselves.');
  return id;
}

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
    order: async (_parent, { id }, context) => {
      requireUser(context);
      const order = await context.loaders.order.load(parseId('id', id));
      if (order) requireOrderAccess(context, order, 'read it');
      return order;
    },
    orders: async (_parent, { first, after, status, userId }, context) => {
      const identity = requireUser(context);
      const limit = pageSize(first);
      let owner = userId === null || userId === undefined ? undefined : parseId('userId', userId);
      // A customer's list is their own orders, whether or not they name themselves.
      if (identity.role === 'CUSTOMER') {
        if (owner !== undefined && owner !== identity.sub) throw forbidden("A customer can only list their own orders.");
        owner = identity.sub;
      }
      const rows = await listOrders(context.db, limit + 1, {
        after: orderCursor(after),
        status: status ?? undefined,
        userId: owner,
      });
      return toConnection(rows, limit, cursorOf);
    },
  },
  Mutation: {
    placeOrder: async (_parent, { input }, context) => {
      const userId = customerOf(context, input.userId);
      return primed(context, await placeOrder(runtimeOf(context), { ...input, userId }, context.requestId));
    },
    cancelOrder: async (_parent, { id, reason }, context) => {
      requireUser(context);
      const orderId = parseId('id', id);
      const order = await context.loaders.order.load(orderId);
      // An unknown order is NOT_FOUND from the lifecycle, as before; the order read here is the one it starts from.
      if (order) requireOrderAccess(context, order, 'cancel it');
      return primed(context, await cancelOrder(runtimeOf(context), orderId, reason, order));
    },
    updateOrderStatus: async (_parent, { id, status }, context) => {
      requireAdmin(context, 'change the status of an order');
      return primed(context, await updateOrderStatus(runtimeOf(context), parseId('id', id), status));
    },
  },
  Order: {
    // A malformed id in a representation cannot match a row: answer null rather than fail the batch.
    // Only the owner, an administrator or a service may resolve an order by reference; others get null.
    __resolveReference: async ({ id }, { loaders, identity }) => {
      const order = isUuid(id) ? await loaders.order.load(id.toLowerCase()) : null;
      return order && mayActFor(identity, order.userId) ? order : null;
    },
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
    orders: async (user, { first, after, status }, context) => {
      requireSelfOrAdmin(context, user.id, "read this user's orders");
      const limit = pageSize(first);
      const rows = await context.loaders.userOrders.load({
        userId: user.id,
        limit: limit + 1,
        after: orderCursor(after),
        status: status ?? undefined,
      });
      return toConnection(rows, limit, cursorOf);
    },
  },
};
