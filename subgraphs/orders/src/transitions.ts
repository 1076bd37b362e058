import { GraphQLError } from 'graphql';
import type { OrderStatus } from './db.js';
import { OrdersErrorCode } from './error-codes.js';

/** Where each status may lead. CONFIRMED and REJECTED are reached only through the stock reservation. */
const NEXT: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING: ['CONFIRMED', 'REJECTED', 'CANCELLED'],
  CONFIRMED: ['SHIPPED', 'CANCELLED'],
  SHIPPED: ['DELIVERED'],
  DELIVERED: [],
  CANCELLED: [],
  REJECTED: [],
};

/** What a client can still do with an order in each status, for refusals. */
const CAN_ONLY: Record<OrderStatus, string> = {
  PENDING: 'it can only be cancelled (cancelOrder) until the stock reservation confirms or rejects it',
  CONFIRMED: 'it can only become SHIPPED (updateOrderStatus) or be cancelled (cancelOrder)',
  SHIPPED: 'it can only become DELIVERED (updateOrderStatus)',
  DELIVERED: 'that is final: it can no longer change',
  CANCELLED: 'that is final: it can no longer change',
  REJECTED: 'that is final: it can no longer change',
};

export function canMove(from: OrderStatus, to: OrderStatus): boolean {
  return NEXT[from].includes(to);
}

/** A status change the life cycle does not allow. */
export class InvalidTransitionError extends GraphQLError {
  constructor(id: string, from: OrderStatus, to: OrderStatus) {
    super(`Order ${id} is ${from}; ${CAN_ONLY[from]}. It cannot become ${to}.`, {
      extensions: { code: OrdersErrorCode.InvalidTransition, id, status: from, requested: to },
    });
    this.name = 'InvalidTransitionError';
  }
}

/** Statuses a client may set with updateOrderStatus; the others have mutations or the saga of their own. */
export const CLIENT_SETTABLE: readonly OrderStatus[] = ['SHIPPED', 'DELIVERED'];
