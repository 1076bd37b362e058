import { createSubgraphServer, loadSchema, type SubgraphDefinition } from '@shop/common';
import { createContext, type Context } from './context.js';
import { resolvers } from './resolvers.js';
import { seed } from './seed.js';

export const typeDefs = loadSchema(new URL('./schema.graphql', import.meta.url));

/** The orders subgraph: owns Order and adds User.orders. */
export const orders: SubgraphDefinition<Context> = {
  name: 'orders',
  defaultPort: 4003,
  migrations: new URL('../migrations/', import.meta.url),
  seed,
  createServer: (production) => createSubgraphServer<Context>({ schema: typeDefs, resolvers, production }),
  createContext,
};
