import { createSubgraphServer, loadSchema, type SubgraphDefinition } from '@shop/common';
import { createContext, type Context } from './context.js';
import { resolvers } from './resolvers.js';
import { startProductsRuntime, type ProductsRuntime } from './runtime.js';
import { seed } from './seed.js';

export const typeDefs = loadSchema(new URL('./schema.graphql', import.meta.url));

/** The products subgraph: owns Product and the catalog. */
export const products: SubgraphDefinition<Context, ProductsRuntime> = {
  name: 'products',
  defaultPort: 4002,
  migrations: new URL('../migrations/', import.meta.url),
  seed,
  createServer: (production) => createSubgraphServer<Context>({ schema: typeDefs, resolvers, production }),
  startRuntime: startProductsRuntime,
  createContext,
};

export type { ProductsRuntime } from './runtime.js';
