import { UnrecoverableError, type DefaultJobOptions } from 'bullmq';
import { QUEUES, isUuid, type OutboxMessage } from '@shop/common';

/**
 * The notifications queue: its name, job names and payloads. Producers in other
 * subgraphs add jobs with exactly these names, ids and shapes.
 */
export const NOTIFICATIONS_QUEUE = QUEUES.notifications;

export const ORDER_STATUSES = ['PENDING', 'CONFIRMED', 'REJECTED', 'SHIPPED', 'DELIVERED', 'CANCELLED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const NOTIFICATION_KINDS = [
  'WELCOME',
  'ORDER_PLACED',
  'ORDER_CONFIRMED',
  'ORDER_REJECTED',
  'ORDER_SHIPPED',
  'ORDER_DELIVERED',
  'ORDER_CANCELLED',
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

const KIND_OF_STATUS: Record<OrderStatus, NotificationKind> = {
  PENDING: 'ORDER_PLACED',
  CONFIRMED: 'ORDER_CONFIRMED',
  REJECTED: 'ORDER_REJECTED',
  SHIPPED: 'ORDER_SHIPPED',
  DELIVERED: 'ORDER_DELIVERED',
  CANCELLED: 'ORDER_CANCELLED',
};

/** An amount in the currency's minor unit, e.g. 1999 USD is 19.99 dollars. */
export interface Money {
  amount: number;
  currency: string;
}

/** Job `welcome`, id `welcome-<userId>`: sent once when an account is created. */
export interface WelcomePayload {
  userId: string;
}

export interface OrderLine {
  productId: string;
  /** Null when the producer did not know it; the template shows the product id instead. */
  productName: string | null;
  quantity: number;
  unitPrice: Money;
}

/** Job `order-status`, id `order-<orderId>-<status>`: one per step of an order. */
export interface OrderStatusPayload {
  userId: string;
  orderId: string;
  status: OrderStatus;
  reason: string | null;
  items: OrderLine[];
  total: Money;
}

export type NotificationRequest =
  | { name: 'welcome'; kind: 'WELCOME'; userId: string; payload: WelcomePayload }
  | { name: 'order-status'; kind: NotificationKind; userId: string; payload: OrderStatusPayload };

export const welcomeJobId = (userId: string) => `welcome-${userId}`;
export const orderStatusJobId = (orderId: string, status: OrderStatus) => `order-${orderId}-${status}`;

/** The outbox message that asks for a welcome notification; written in the createUser transaction. */
export function welcomeMessage(userId: string): OutboxMessage {
  const payload: WelcomePayload = { userId };
  return { kind: 'job', queue: NOTIFICATIONS_QUEUE, name: 'welcome', jobId: welcomeJobId(userId), payload };
}

/**
 * Options for producers. Job options travel with each job, so every producer
 * sets them; the worker honours whatever attempts a job carries.
 */
export function notificationJobOptions(attempts = 5, backoffMs = 1_000): DefaultJobOptions {
  return {
    attempts,
    backoff: { type: 'exponential', delay: backoffMs },
    // Completed jobs stay a day so that adding the same job id again is ignored by BullMQ.
    removeOnComplete: { age: 86_400, count: 10_000 },
    // Failed jobs are the dead letter: kept until an operator retries or removes them.
    removeOnFail: false,
  };
}

/** A job whose name or payload the worker cannot use; retrying would not help. */
export class InvalidNotificationJob extends UnrecoverableError {}

type Fields = Record<string, unknown>;

function invalid(name: string, message: string): InvalidNotificationJob {
  return new InvalidNotificationJob(`invalid ${name} job: ${message}`);
}

function object(value: unknown, name: string, path: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(name, `${path} must be an object`);
  return value as Fields;
}

function uuid(value: unknown, name: string, path: string): string {
  if (typeof value !== 'string' || !isUuid(value)) throw invalid(name, `${path} must be a UUID`);
  return value.toLowerCase();
}

function text(value: unknown, name: string, path: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw invalid(name, `${path} must be a string of 1 to ${max} characters`);
  }
  return value;
}

function optionalText(value: unknown, name: string, path: string, max: number): string | null {
  return value === null || value === undefined ? null : text(value, name, path, max);
}

function integer(value: unknown, name: string, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(name, `${path} must be an integer between ${min} and ${max}`);
  }
  return value;
}

function money(value: unknown, name: string, path: string): Money {
  const fields = object(value, name, path);
  const currency = fields.currency;
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) {
    throw invalid(name, `${path}.currency must be an ISO-4217 code such as USD`);
  }
  return { amount: integer(fields.amount, name, `${path}.amount`, 0, Number.MAX_SAFE_INTEGER), currency };
}

function parseOrderStatus(data: unknown): OrderStatusPayload {
  const name = 'order-status';
  const fields = object(data, name, 'payload');
  const status = fields.status;
  if (typeof status !== 'string' || !(ORDER_STATUSES as readonly string[]).includes(status)) {
    throw invalid(name, `status must be one of ${ORDER_STATUSES.join(', ')}`);
  }
  if (!Array.isArray(fields.items) || fields.items.length === 0 || fields.items.length > 100) {
    throw invalid(name, 'items must be a list of 1 to 100 lines');
  }
  const items = fields.items.map((item: unknown, i): OrderLine => {
    const line = object(item, name, `items[${i}]`);
    return {
      productId: text(line.productId, name, `items[${i}].productId`, 100),
      productName: optionalText(line.productName, name, `items[${i}].productName`, 500),
      quantity: integer(line.quantity, name, `items[${i}].quantity`, 1, 1_000_000),
      unitPrice: money(line.unitPrice, name, `items[${i}].unitPrice`),
    };
  });
  return {
    userId: uuid(fields.userId, name, 'userId'),
    orderId: text(fields.orderId, name, 'orderId', 100),
    status: status as OrderStatus,
    reason: optionalText(fields.reason, name, 'reason', 2_000),
    items,
    total: money(fields.total, name, 'total'),
  };
}

/** Validates a job by name; throws InvalidNotificationJob (no retries) for anything else. */
export function parseNotificationJob(name: string, data: unknown): NotificationRequest {
  switch (name) {
    case 'welcome': {
      const userId = uuid(object(data, name, 'payload').userId, name, 'userId');
      return { name, kind: 'WELCOME', userId, payload: { userId } };
    }
    case 'order-status': {
      const payload = parseOrderStatus(data);
      return { name, kind: KIND_OF_STATUS[payload.status], userId: payload.userId, payload };
    }
    default:
      throw new InvalidNotificationJob(`unknown notification job name "${name}"`);
  }
}
