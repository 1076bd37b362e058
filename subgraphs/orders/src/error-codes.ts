/** The orders subgraph's own error codes (beyond `@shop/common`'s `ErrorCode`); each is public. */
export const OrdersErrorCode = {
  /** A status change the order's life cycle does not allow (e.g. DELIVERED to CANCELLED). */
  InvalidTransition: 'INVALID_TRANSITION',
} as const;

/** What the orders subgraph (and the router in front of it) keep in production. */
export const ORDERS_PUBLIC_CODES: readonly string[] = Object.values(OrdersErrorCode);
