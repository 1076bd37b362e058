/**
 * The REST-style baseline as a service of its own: GET /orders/<id> answers the
 * data of OrderDetails by calling the subgraphs the way a hand-written aggregation
 * would (bench/lib/rest.ts). Subgraph URLs come from <NAME>_SUBGRAPH_URL.
 */
import { createServer } from 'node:http';
import { loadIdentity } from './lib/auth.js';
import type { SubgraphUrls } from './lib/direct.js';
import { restOrderDetails } from './lib/rest.js';

const env = process.env;
const urls: SubgraphUrls = {
  users: env.USERS_SUBGRAPH_URL!,
  products: env.PRODUCTS_SUBGRAPH_URL!,
  orders: env.ORDERS_SUBGRAPH_URL!,
  inventory: env.INVENTORY_SUBGRAPH_URL!,
};
await loadIdentity();
const ORDER_PATH = /^\/orders\/([\w-]+)$/;

const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.end('ok');
    return;
  }
  const id = ORDER_PATH.exec(req.url ?? '')?.[1];
  if (req.method !== 'GET' || !id) {
    res.statusCode = 404;
    res.end();
    return;
  }
  restOrderDetails(urls, id).then(
    (body) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    },
    (error: unknown) => {
      res.statusCode = 502;
      res.end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
    },
  );
});
server.keepAliveTimeout = 60_000;
server.listen(Number(env.PORT), env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
server.on('close', () => undefined);
