/**
 * The processes `npm start` runs, in start order; `port` is where each answers
 * /health. The notification worker runs as its own process only on a database
 * server: embedded PGlite belongs to one process, so there the users subgraph
 * runs the worker itself. The web app's dev server comes last, after the router it proxies to.
 */
export interface Service {
  name: string;
  entry: string;
  port: number | undefined;
  when?: (env: NodeJS.ProcessEnv) => boolean;
}

export const SERVICES: readonly Service[] = [
  { name: 'users', entry: 'subgraphs/users/src/main.ts', port: 4001 },
  { name: 'products', entry: 'subgraphs/products/src/main.ts', port: 4002 },
  { name: 'orders', entry: 'subgraphs/orders/src/main.ts', port: 4003 },
  { name: 'inventory', entry: 'subgraphs/inventory/src/main.ts', port: 4004 },
  { name: 'notify', entry: 'subgraphs/users/src/worker-main.ts', port: 4006, when: (env) => Boolean(env.USERS_DATABASE_URL) },
  { name: 'dashboard', entry: 'dashboard/src/main.ts', port: 4005 },
  { name: 'router', entry: 'router/src/main.ts', port: 4000 },
  // The web app's Vite dev server, proxying /graphql to the router; started once the router answers.
  { name: 'web', entry: 'web/scripts/dev.ts', port: 5173 },
];
