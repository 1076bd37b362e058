import { createSubgraphServer, loadSchema, type SubgraphDefinition } from '@shop/common';
import { createContext, type Context } from './context.js';
import { resolvers } from './resolvers.js';
import { seed } from './seed.js';

export const typeDefs = loadSchema(new URL('./schema.graphql', import.meta.url));

/** The inventory subgraph: extends Product with stock and shipping estimates. */
export const inventory: SubgraphDefinition<Context> = {
  name: 'inventory',
  defaultPort: 4004,
  migrations: new URL('../migrations/', import.meta.url),
  seed,
  createServer: (production) => createSubgraphServer<Context>({ schema: typeDefs, resolvers, production }),
  createContext,
};
