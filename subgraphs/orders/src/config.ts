import { readIdentitySecret, readInt, readQueueConfig, readString, readUrl, type QueueConfig } from '@shop/common';

/** Settings of the orders runtime (saga worker, outbox relay, user and product look-ups), read once at start. */
export interface OrdersConfig {
  queue: QueueConfig;
  /** GraphQL endpoint of the users subgraph, asked whether a user exists. */
  usersUrl: string;
  /** GraphQL endpoint of the products subgraph, asked for names and current prices. */
  productsUrl: string;
  /** How long one look-up request may take before it is abandoned (and retried). */
  lookupTimeoutMs: number;
  /** Retries of a look-up after a network error, a timeout or a 5xx answer. */
  lookupRetries: number;
  /** Reservation results handled at once by this process. */
  workerConcurrency: number;
  /** Delivery attempts of a notification job, and the first pause between them (doubled each time). */
  notificationAttempts: number;
  notificationBackoffMs: number;
  /** Signs the orders service's identity on its look-ups. */
  identitySecret: string;
  /** How long a placeOrder idempotency key answers with its order; older keys are pruned and may be reused. */
  idempotencyTtlHours: number;
}

const HTTP = ['http:', 'https:'] as const;

export function readOrdersConfig(env: NodeJS.ProcessEnv): OrdersConfig {
  return {
    queue: readQueueConfig(env),
    usersUrl: readUrl(env, 'USERS_SUBGRAPH_URL', HTTP) ?? 'http://127.0.0.1:4001/graphql',
    productsUrl: readUrl(env, 'PRODUCTS_SUBGRAPH_URL', HTTP) ?? 'http://127.0.0.1:4002/graphql',
    lookupTimeoutMs: readInt(env, 'ORDERS_LOOKUP_TIMEOUT_MS', 3_000, 50, 60_000),
    lookupRetries: readInt(env, 'ORDERS_LOOKUP_RETRIES', 2, 0, 10),
    workerConcurrency: readInt(env, 'ORDERS_WORKER_CONCURRENCY', 8, 1, 100),
    // The same variables and defaults as the users subgraph, the other producer of notifications.
    notificationAttempts: readInt(env, 'NOTIFICATION_ATTEMPTS', 5, 1, 100),
    notificationBackoffMs: readInt(env, 'NOTIFICATION_BACKOFF_MS', 1_000, 1, 3_600_000),
    identitySecret: readIdentitySecret(env, readString(env, 'NODE_ENV', 'development') === 'production'),
    // At least a day, so a client retrying after an outage of up to a day never places a second order.
    idempotencyTtlHours: readInt(env, 'ORDERS_IDEMPOTENCY_TTL_HOURS', 24, 24, 8_760),
  };
}
