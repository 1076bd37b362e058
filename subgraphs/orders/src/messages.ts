import { QUEUES, currentRequestId, type OutboxMessage } from '@shop/common';
import type { OrderRow, OrderStatus } from './db.js';

export const RESERVATIONS_QUEUE = QUEUES.reservations;
export const RESERVATION_RESULTS_QUEUE = QUEUES.reservationResults;
export const NOTIFICATIONS_QUEUE = QUEUES.notifications;

/** Redis pub/sub channel of order status events, under the deployment's key prefix. */
export function orderEventsChannel(prefix: string): string {
  return `${prefix}:order-events`;
}

/** Payload of a `reserve` job. */
export interface ReserveJob {
  orderId: string;
  lines: { productId: string; quantity: number }[];
  /** The request that placed the order, so the saga's log lines name it. */
  requestId?: string;
}

/** Payload of a `release` job. */
export interface ReleaseJob {
  orderId: string;
}

/** An order as JSON carries it: its row, with the timestamps as ISO strings. */
export interface OrderSnapshot extends Omit<OrderRow, 'createdAt' | 'updatedAt'> {
  createdAt: string;
  updatedAt: string;
}

/** Payload of an `order.status` event. */
export interface OrderStatusEvent {
  orderId: string;
  userId: string;
  status: OrderStatus;
  at: string;
  reason: string | null;
  /**
   * The order as this change left it, written in the change's transaction: subscriptions send it as it is instead
   * of reading the order again for every event. Absent from events written before it was added.
   */
  order?: OrderSnapshot;
}

/** Payload of an `order-status` notification job. */
export interface OrderStatusNotification {
  userId: string;
  orderId: string;
  status: OrderStatus;
  reason: string | null;
  items: {
    productId: string;
    productName: string | null;
    quantity: number;
    unitPrice: { amount: number; currency: string };
  }[];
  total: { amount: number; currency: string };
}

export function reserveJob(order: Pick<OrderRow, 'id' | 'items'>): OutboxMessage {
  const payload: ReserveJob = {
    orderId: order.id,
    lines: order.items.map((item) => ({ productId: item.productId, quantity: item.quantity })),
  };
  const requestId = currentRequestId();
  if (requestId) payload.requestId = requestId;
  // BullMQ job ids must not contain ':'; `-` keeps them readable.
  return { kind: 'job', queue: RESERVATIONS_QUEUE, name: 'reserve', jobId: `reserve-${order.id}`, payload };
}

export function releaseJob(orderId: string): OutboxMessage {
  const payload: ReleaseJob = { orderId };
  return { kind: 'job', queue: RESERVATIONS_QUEUE, name: 'release', jobId: `release-${orderId}`, payload };
}

/**
 * Where an `order.status` event holds the time of its change. A status change writes its event in the statement
 * that makes the change, before this process knows the time: the database writes it at these paths
 * (changeOrderStatus), as toISOString() would.
 */
export const EVENT_TIME_PATHS = [['at'], ['order', 'updatedAt']] as const satisfies readonly (
  | readonly [keyof OrderStatusEvent]
  | readonly ['order', keyof OrderSnapshot]
)[];

/**
 * The event a status change publishes for live subscribers, with the order as the change left it. Its key names
 * the order and the status, so a change relayed twice is still one event.
 */
export function statusEvent(prefix: string, order: OrderRow, at: Date, reason: string | null): OutboxMessage {
  const payload: OrderStatusEvent = {
    orderId: order.id,
    userId: order.userId,
    status: order.status,
    at: at.toISOString(),
    reason,
    order: { ...order, createdAt: order.createdAt.toISOString(), updatedAt: at.toISOString() },
  };
  return { kind: 'event', channel: orderEventsChannel(prefix), name: 'order.status', key: `${order.id}-${order.status}`, payload };
}

/** The notification job a status change sends the customer; its job id makes a repeated one a no-op. */
export function statusNotification(order: OrderRow, reason: string | null): OutboxMessage {
  const money = (amount: number) => ({ amount, currency: order.currency });
  const payload: OrderStatusNotification = {
    userId: order.userId,
    orderId: order.id,
    status: order.status,
    reason,
    items: order.items.map((item) => ({
      productId: item.productId,
      productName: item.productName,
      quantity: item.quantity,
      unitPrice: money(item.unitPriceAmount),
    })),
    total: money(order.items.reduce((sum, item) => sum + item.unitPriceAmount * item.quantity, 0)),
  };
  return { kind: 'job', queue: NOTIFICATIONS_QUEUE, name: 'order-status', jobId: `order-${order.id}-${order.status}`, payload };
}

/** What every status change announces: an event for live subscribers and a notification for the customer. */
export function statusMessages(prefix: string, order: OrderRow, at: Date, reason: string | null): OutboxMessage[] {
  return [statusEvent(prefix, order, at, reason), statusNotification(order, reason)];
}
