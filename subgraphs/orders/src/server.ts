import { createSubgraphServer, loadSchema, type SubgraphDefinition } from '@shop/common';
import { createContext, type Context } from './context.js';
import { resolvers } from './resolvers.js';
import { startOrdersRuntime, type OrdersRuntime } from './runtime.js';
import { seed } from './seed.js';
import { ORDERS_PUBLIC_CODES } from './error-codes.js';

export const typeDefs = loadSchema(new URL('./schema.graphql', import.meta.url));

/** The orders subgraph: owns Order and its life cycle, and adds User.orders. */
export const orders: SubgraphDefinition<Context, OrdersRuntime> = {
  name: 'orders',
  defaultPort: 4003,
  migrations: new URL('../migrations/', import.meta.url),
  seed,
  createServer: (production) => createSubgraphServer<Context>({ schema: typeDefs, resolvers, production, publicCodes: ORDERS_PUBLIC_CODES }),
  startRuntime: startOrdersRuntime,
  createContext,
};

// What other processes need to consume this subgraph's messages.
export {
  NOTIFICATIONS_QUEUE,
  orderEventsChannel,
  type OrderStatusEvent,
  type OrderStatusNotification,
} from './messages.js';
export type { OrdersRuntime } from './runtime.js';
export { OrdersErrorCode, ORDERS_PUBLIC_CODES } from './error-codes.js';
