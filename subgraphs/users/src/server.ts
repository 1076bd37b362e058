import { createSubgraphServer, loadSchema, type SubgraphDefinition } from '@shop/common';
import { createContext, type Context } from './context.js';
import { resolvers } from './resolvers.js';
import { startUsersRuntime, type UsersRuntime } from './runtime.js';
import { seed } from './seed.js';
import { ensureAdmin, readAdminBootstrap } from './admin.js';

export const typeDefs = loadSchema(new URL('./schema.graphql', import.meta.url));

/** The users subgraph: owns User and the notifications sent to users. */
export const users: SubgraphDefinition<Context, UsersRuntime> = {
  name: 'users',
  defaultPort: 4001,
  migrations: new URL('../migrations/', import.meta.url),
  seed,
  createServer: (production) => createSubgraphServer<Context>({ schema: typeDefs, resolvers, production }),
  startRuntime: startUsersRuntime,
  // ADMIN_EMAIL and ADMIN_PASSWORD: the operator's first administrator, created once.
  bootstrap: async (db, env, log) => {
    const account = readAdminBootstrap(env);
    if (account) await ensureAdmin(db, account, log);
  },
  createContext,
};

export { startNotificationWorker, type NotificationWorker } from './notifications/worker.js';
