import { createSubgraphServer, loadSchema, type SubgraphDefinition } from '@shop/common';
import { createContext, type Context } from './context.js';
import { resolvers } from './resolvers.js';
import { startInventoryRuntime, type InventoryRuntime } from './runtime.js';
import { seed } from './seed.js';

export const typeDefs = loadSchema(new URL('./schema.graphql', import.meta.url));

/** The inventory subgraph: extends Product with stock and shipping estimates, and reserves stock for orders. */
export const inventory: SubgraphDefinition<Context, InventoryRuntime> = {
  name: 'inventory',
  defaultPort: 4004,
  migrations: new URL('../migrations/', import.meta.url),
  seed,
  createServer: (production) => createSubgraphServer<Context>({ schema: typeDefs, resolvers, production }),
  startRuntime: startInventoryRuntime,
  createContext,
};

export type { InventoryRuntime } from './runtime.js';
