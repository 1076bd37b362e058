import type { Identity, Logger } from '@shop/common';

export interface RouterContext {
  requestId: string;
  log: Logger;
  /** The caller whose access token verified; null when anonymous. */
  identity?: Identity | null;
  /** The caller's identity signed for one subgraph (the `x-shop-identity` header); undefined when anonymous. */
  identityFor?: (subgraph: string) => string | undefined;
  /** When the caller's access token expires (ms since the epoch). */
  expiresAtMs?: number;
  /** The client's address (X-Forwarded-For behind a trusted proxy), for throttling failed logins. */
  clientAddress?: string;
}
