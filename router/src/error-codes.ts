import { COMMON_PUBLIC_CODES, ErrorCode } from '@shop/common';
import { ORDERS_PUBLIC_CODES } from '@shop/orders/error-codes';

/** Refusal codes, one per operation limit (`extensions.code`). */
export const LimitCode = {
  Depth: 'QUERY_TOO_DEEP',
  Cost: 'QUERY_TOO_COMPLEX',
  Aliases: 'TOO_MANY_ALIASES',
  RootFields: 'TOO_MANY_ROOT_FIELDS',
  Tokens: 'TOO_MANY_TOKENS',
} as const;
export type LimitCode = (typeof LimitCode)[keyof typeof LimitCode];

/** The router's own codes, beside the shared ones (`ErrorCode` of `@shop/common`: RATE_LIMITED, UNAUTHENTICATED, ...). */
export const RouterErrorCode = {
  ...LimitCode,
  /** Safelist mode: the operation is not in the persisted query manifest. */
  OperationNotInSafelist: 'OPERATION_NOT_IN_SAFELIST',
  /** A subgraph could not be reached (or failed); its fields are missing from the answer. */
  SubgraphUnavailable: 'SUBGRAPH_UNAVAILABLE',
  /** The supergraph changed under an open subscription: subscribe again. */
  SubscriptionSchemaReloaded: 'SUBSCRIPTION_SCHEMA_RELOADED',
  SubscriptionFailed: 'SUBSCRIPTION_FAILED',
} as const;

/**
 * What the router lets through in production: the shared codes, its own, those of the subgraphs it serves (they pass
 * their errors on through it), and `extra` (PUBLIC_ERROR_CODES, for subgraphs of another graph). Everything else
 * becomes "Internal server error".
 */
export function routerPublicCodes(extra: readonly string[] = []): string[] {
  return [...new Set([...COMMON_PUBLIC_CODES, ...Object.values(RouterErrorCode), ...ORDERS_PUBLIC_CODES, ...extra])];
}

export { ErrorCode };
