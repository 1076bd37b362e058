import { deepStrictEqual } from 'node:assert/strict';
import { startService } from '../lib/processes.js';
import { round, type HttpTarget } from '../lib/load.js';
import { ORDER_DETAILS } from '../lib/operations.js';
import type { BenchContext, ScenarioResult } from '../lib/context.js';
import { compareInTurns, graphqlTarget, postGraphQL, subgraphPids } from './gateway.js';

/** 4. The federated query against a REST-style order endpoint that calls the services once per line. */
export async function restScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const { urls } = ctx.stack;
  const rest = await startService('rest', 'bench/rest-server.ts', {
    USERS_SUBGRAPH_URL: urls.users,
    PRODUCTS_SUBGRAPH_URL: urls.products,
    ORDERS_SUBGRAPH_URL: urls.orders,
    INVENTORY_SUBGRAPH_URL: urls.inventory,
  });
  try {
    for (const id of ctx.orderIds.slice(0, 20)) {
      const viaRest = (await (await fetch(`${rest.origin}/orders/${id}`)).json()) as unknown;
      deepStrictEqual(viaRest, await postGraphQL(ctx.routerUrl, { query: ORDER_DETAILS, variables: { id } }, ctx.authHeaders));
    }
    const restTarget: HttpTarget = {
      name: 'rest',
      url: rest.origin,
      pid: rest.pid,
      alsoWatch: subgraphPids(ctx),
      request: (i) => ({ method: 'GET', path: `/orders/${ctx.orderIds[i % ctx.orderIds.length]}` }),
    };
    const results = await compareInTurns(ctx, [graphqlTarget('router', ctx.routerUrl, ctx.router.pid, ctx), restTarget]);
    const f = results.router!.combined;
    const r = results.rest!.combined;
    const ratio = round(f.requestsPerSecond / r.requestsPerSecond, 2);
    return {
      scenario: 'rest',
      title: 'Federated OrderDetails vs REST-style aggregation',
      federated: results.router,
      rest: results.rest,
      ratios: { requestsPerSecond: ratio, p99: round(r.latencyMs.p99 / f.latencyMs.p99, 2) },
      targets: [
        { goal: 'federated >= 3x the REST-style aggregation (requests/s)', measured: `${f.requestsPerSecond} vs ${r.requestsPerSecond} req/s (x${ratio})`, met: ratio >= 3 },
        { goal: 'no failed requests', measured: `${f.failed} federated, ${r.failed} REST`, met: f.failed === 0 && r.failed === 0 },
      ],
    };
  } finally {
    await rest.stop();
  }
}
