/**
 * What the outbox reconcilers cost at steady state, with their default settings: SQL statements and Redis calls a
 * minute, idle and under a steady stream of orders. Runs users, products, inventory and orders (with their runtimes
 * and the in-process notification worker) on a PostgreSQL cluster of its own with pg_stat_statements, and a Redis
 * key prefix of its own.
 *
 *   npx tsx bench/reconciler-cost.ts [--orders-per-second 10] [--seconds 60]
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { demoShop } from '@shop/common';
import { ADMIN, createTestRedis, graphql, identityHeaders, startTestSubgraph, type TestSubgraph } from '@shop/common/testing';
import { startPrivatePostgres } from '@shop/common/test-servers';
import { users } from '@shop/users';
import { products } from '@shop/products';
import { inventory } from '@shop/inventory';
import { orders } from '@shop/orders';

const { values } = parseArgs({ options: { 'orders-per-second': { type: 'string', default: '10' }, seconds: { type: 'string', default: '60' } } });
const rate = Number(values['orders-per-second']);
const seconds = Number(values.seconds);

const server = await startPrivatePostgres({ settings: { shared_preload_libraries: 'pg_stat_statements' } });
process.env.TEST_DATABASE_URL = server.url('postgres');
const admin = new pg.Client({ connectionString: server.url('postgres') });
await admin.connect();
await admin.query('CREATE EXTENSION pg_stat_statements');
const redis = await createTestRedis('reconciler-cost');
const env = { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix, NOTIFICATION_WORKER_IN_PROCESS: 'true', LOG_LEVEL: 'silent' };
const started: TestSubgraph[] = [];
const shop = demoShop();

/** Reconciler statements and Redis look-ups so far: the claim and confirm statements, and the checks counted by the metric. */
async function reconcilerStatements(): Promise<number> {
  const { rows } = await admin.query<{ calls: string }>(
    `SELECT coalesce(sum(calls), 0)::text AS calls FROM pg_stat_statements
     WHERE query LIKE 'UPDATE outbox SET check_after%' OR query LIKE 'UPDATE outbox SET%confirmed_at = CASE WHEN id%'`,
  );
  return Number(rows[0]!.calls);
}

async function redisChecks(subgraphs: TestSubgraph[]): Promise<number> {
  let total = 0;
  for (const subgraph of subgraphs) {
    const text = await (await fetch(new URL('/metrics', subgraph.url))).text();
    for (const line of text.split('\n')) {
      if (line.startsWith('outbox_reconciler_checked_total')) total += Number(line.split(' ').at(-1));
    }
  }
  // Subgraphs in one process share a registry: each line was counted once per subgraph asked.
  return total / subgraphs.length;
}

async function measure(label: string, ms: number, load: () => Promise<void>): Promise<void> {
  const [statements, checks] = [await reconcilerStatements(), await redisChecks(started)];
  const until = Date.now() + ms;
  let placed = 0;
  while (Date.now() < until) {
    const tick = Date.now();
    if (rate > 0 && label !== 'idle') {
      await load();
      placed++;
    }
    await sleep(Math.max(0, (label === 'idle' ? 1_000 : 1_000 / rate) - (Date.now() - tick)));
  }
  // Jobs are first checked an age after their hand-over: wait for the last ones' checks to fall in the window.
  if (label !== 'idle') await sleep(30_000);
  const minutes = (ms + (label === 'idle' ? 0 : 30_000)) / 60_000;
  const sql = (await reconcilerStatements()) - statements;
  const redisCalls = (await redisChecks(started)) - checks;
  process.stdout.write(
    `${label}: ${placed} orders; reconciler SQL ${(sql / minutes).toFixed(1)}/min, Redis look-ups ${(redisCalls / minutes).toFixed(1)}/min over ${minutes.toFixed(2)} min\n`,
  );
}

try {
  const u = await startTestSubgraph(users, { seed: true, env });
  const p = await startTestSubgraph(products, { seed: true, env });
  const subgraphEnv = { ...env, USERS_SUBGRAPH_URL: u.url, PRODUCTS_SUBGRAPH_URL: p.url };
  const inv = await startTestSubgraph(inventory, { seed: true, env: subgraphEnv });
  const ord = await startTestSubgraph(orders, { env: subgraphEnv });
  started.push(u, p, inv, ord);
  await sleep(5_000);
  await measure('idle', seconds * 1_000, async () => undefined);
  let n = 0;
  await measure(`${rate} orders/s`, seconds * 1_000, async () => {
    const product = shop.products[n++ % shop.products.length]!;
    const user = shop.users[n % shop.users.length]!;
    const res = await graphql(
      ord.url,
      'mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }',
      { input: { userId: user.id, items: [{ productId: product.id, quantity: 1 }] } },
      identityHeaders('orders', ADMIN),
    );
    if (res.errors) throw new Error(JSON.stringify(res.errors));
  });
} finally {
  for (const subgraph of started.reverse()) await subgraph.close();
  await redis.cleanup();
  await admin.end();
  await server.stop();
}
