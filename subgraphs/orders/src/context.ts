import type { Database, SubgraphContext, SubgraphRequestInfo } from '@shop/common';
import { createLoaders, type Loaders } from './loaders.js';
import type { OrdersRuntime } from './runtime.js';

export interface Context extends SubgraphContext<Loaders> {
  /** The relay, look-up client and settings mutations use; absent when the process runs without a runtime. */
  runtime: OrdersRuntime | undefined;
}

export function createContext(db: Database, info: SubgraphRequestInfo, runtime: OrdersRuntime | undefined): Context {
  return { db, loaders: createLoaders(db), requestId: info.requestId, log: info.log, identity: info.identity, runtime };
}
