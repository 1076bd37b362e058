import type { Database, SubgraphContext, SubgraphRequestInfo } from '@shop/common';
import { createLoaders, type Loaders } from './loaders.js';
import type { InventoryRuntime } from './runtime.js';

export interface Context extends SubgraphContext<Loaders> {
  /** The reservation worker, relay and invalidator; absent when the process runs without a runtime. */
  runtime: InventoryRuntime | undefined;
}

export function createContext(db: Database, info: SubgraphRequestInfo, runtime: InventoryRuntime | undefined): Context {
  return { db, loaders: createLoaders(db), requestId: info.requestId, log: info.log, identity: info.identity, runtime };
}
