import type { Identity, Logger } from '@shop/common';

export interface RouterContext {
  requestId: string;
  log: Logger;
  /** The caller whose access token verified; null when anonymous. */
  identity?: Identity | null;
  /** The caller's identity signed for one subgraph (the `x-shop-identity` header); undefined when anonymous. */
  identityFor?: (subgraph: string) => string | undefined;
}
