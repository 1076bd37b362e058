import { deepStrictEqual } from 'node:assert/strict';
import { startService } from '../lib/processes.js';
import { round, type HttpTarget } from '../lib/load.js';
import { ORDER_DETAILS, type OrderDetails } from '../lib/operations.js';
import type { BenchContext, ScenarioResult } from '../lib/context.js';
import { NO_CACHE, compareInTurns, graphqlTarget, postGraphQL, subgraphPids } from './gateway.js';

const UPDATE_PRICE = `mutation($id: ID!, $amount: Int!, $currency: String!) {
  updateProduct(id: $id, input: { price: { amount: $amount, currency: $currency } }) { id }
}`;
const RESTOCK = 'mutation($id: ID!) { restock(productId: $id, quantity: 1) { id } }';

/** 4. The federated query against a REST-style order endpoint that calls the services once per line. */
export async function restScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const { urls } = ctx.stack;
  const rest = await startService('rest', 'bench/rest-server.ts', {
    USERS_SUBGRAPH_URL: urls.users,
    PRODUCTS_SUBGRAPH_URL: urls.products,
    ORDERS_SUBGRAPH_URL: urls.orders,
    INVENTORY_SUBGRAPH_URL: urls.inventory,
  });
  const viaRest = async (id: string) => (await (await fetch(`${rest.origin}/orders/${id}`)).json()) as OrderDetails;
  const viaRouter = (id: string) => postGraphQL<OrderDetails>(ctx.routerUrl, { query: ORDER_DETAILS, variables: { id } }, ctx.authHeaders);
  try {
    for (const id of ctx.orderIds.slice(0, 20)) deepStrictEqual(await viaRest(id), await viaRouter(id));
    const restTarget: HttpTarget = {
      name: 'rest',
      url: rest.origin,
      pid: rest.pid,
      alsoWatch: subgraphPids(ctx),
      request: (i) => ({ method: 'GET', path: `/orders/${ctx.orderIds[i % ctx.orderIds.length]}` }),
    };
    const results = await compareInTurns(ctx, [
      graphqlTarget('router', ctx.routerUrl, ctx.router.pid, ctx),
      graphqlTarget('routerNoCache', ctx.routerUrl, ctx.router.pid, ctx, NO_CACHE),
      restTarget,
    ]);
    const freshness = await changedDataCheck(ctx, viaRouter, viaRest);
    const f = results.router!.combined;
    const u = results.routerNoCache!.combined;
    const r = results.rest!.combined;
    const ratio = round(f.requestsPerSecond / r.requestsPerSecond, 2);
    const uncachedRatio = round(u.requestsPerSecond / r.requestsPerSecond, 2);
    return {
      scenario: 'rest',
      title: 'Federated OrderDetails vs REST-style aggregation',
      federated: results.router,
      federatedNoCache: results.routerNoCache,
      rest: results.rest,
      freshness,
      ratios: {
        requestsPerSecond: ratio,
        p99: round(r.latencyMs.p99 / f.latencyMs.p99, 2),
        noCacheRequestsPerSecond: uncachedRatio,
        noCacheP99: round(r.latencyMs.p99 / u.latencyMs.p99, 2),
      },
      targets: [
        { goal: 'federated >= 3x the REST-style aggregation (requests/s)', measured: `${f.requestsPerSecond} vs ${r.requestsPerSecond} req/s (x${ratio})`, met: ratio >= 3 },
        {
          goal: 'same, without the entity cache (Cache-Control: no-cache)',
          measured: `${u.requestsPerSecond} vs ${r.requestsPerSecond} req/s (x${uncachedRatio})`,
          met: uncachedRatio >= 3,
        },
        {
          goal: 'the cached answers follow changes: after a price change and a restock, router = REST on every order checked',
          measured: `${freshness.equal}/${freshness.checked} equal, ${freshness.changedProducts} products changed`,
          met: freshness.equal === freshness.checked && freshness.checked > 0,
        },
        {
          goal: 'no failed requests',
          measured: `${f.failed} federated, ${u.failed} federated without cache, ${r.failed} REST`,
          met: f.failed === 0 && u.failed === 0 && r.failed === 0,
        },
      ],
    };
  } finally {
    await rest.stop();
  }
}

/**
 * Right after the load has filled the router's entity cache: changes the price and the stock of the first line's
 * product of some orders (through the router, as an administrator), then reads each order through the router at once
 * and through the REST-style service (no cache), and counts the answers that are equal.
 */
async function changedDataCheck(
  ctx: BenchContext,
  viaRouter: (id: string) => Promise<OrderDetails>,
  viaRest: (id: string) => Promise<OrderDetails>,
): Promise<{ checked: number; equal: number; changedProducts: number }> {
  const ids = ctx.orderIds.slice(0, 20);
  const changed = new Set<string>();
  let equal = 0;
  for (const id of ids) {
    const before = await viaRouter(id);
    const product = before.order?.items[0]?.product;
    if (!product) continue;
    await postGraphQL(ctx.routerUrl, { query: UPDATE_PRICE, variables: { id: product.id, amount: product.price.amount + 1, currency: product.price.currency } }, ctx.authHeaders);
    await postGraphQL(ctx.routerUrl, { query: RESTOCK, variables: { id: product.id } }, ctx.authHeaders);
    changed.add(product.id);
    const [federated, aggregated] = [await viaRouter(id), await viaRest(id)];
    try {
      deepStrictEqual(federated, aggregated);
      equal++;
    } catch {
      // Counted as a miss; the target reports it.
    }
  }
  return { checked: ids.length, equal, changedProducts: changed.size };
}
