/** The processes `npm start` runs, in start order. */
export const SERVICES = [
  { name: 'users', entry: 'subgraphs/users/src/main.ts', port: 4001 },
  { name: 'products', entry: 'subgraphs/products/src/main.ts', port: 4002 },
  { name: 'orders', entry: 'subgraphs/orders/src/main.ts', port: 4003 },
  { name: 'inventory', entry: 'subgraphs/inventory/src/main.ts', port: 4004 },
  { name: 'router', entry: 'router/src/main.ts', port: 4000 },
] as const;
