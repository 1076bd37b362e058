import { contextWithLoaders, type Database, type EntityInvalidator, type SubgraphContext, type SubgraphRequestInfo } from '@shop/common';
import { createLoaders, type Loaders } from './loaders.js';
import type { ProductsRuntime } from './runtime.js';

export interface Context extends SubgraphContext<Loaders> {
  /** Announces committed product changes to the router's entity cache; undefined without a runtime (nothing cached). */
  invalidator: EntityInvalidator | undefined;
}

const withLoaders = contextWithLoaders(createLoaders);

export function createContext(db: Database, info: SubgraphRequestInfo, runtime: ProductsRuntime | undefined): Context {
  return { ...withLoaders(db, info), invalidator: runtime?.invalidator };
}
