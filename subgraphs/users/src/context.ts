import {
  contextWithLoaders,
  type Database,
  type EntityInvalidator,
  type OutboxRelay,
  type SubgraphContext,
  type SubgraphRequestInfo,
  type TokenIssuer,
} from '@shop/common';
import { createLoaders, type Loaders } from './loaders.js';
import type { UsersRuntime } from './runtime.js';

export type Context = SubgraphContext<Loaders> & {
  /** Wakes the outbox relay after a commit that wrote outbox rows; undefined without a runtime. */
  outbox: Pick<OutboxRelay, 'wake'> | undefined;
  /** Signs login tokens; undefined without a runtime. */
  tokens: TokenIssuer | undefined;
  /** Announces committed account changes to the router's entity cache; undefined without a runtime (nothing cached). */
  invalidator: EntityInvalidator | undefined;
};

const withLoaders = contextWithLoaders(createLoaders);

export function createContext(db: Database, info: SubgraphRequestInfo, runtime: UsersRuntime | undefined): Context {
  return { ...withLoaders(db, info), outbox: runtime?.relay, tokens: runtime?.tokens, invalidator: runtime?.invalidator };
}
