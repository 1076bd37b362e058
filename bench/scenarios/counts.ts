import { demoShop, type OutboxRelay } from '@shop/common';
import { startStack, type SubgraphName } from '../../router/test/stack.js';
import { login, loadIdentity, withDevelopmentIdentity } from '../lib/auth.js';
import { directCalls, directOrderDetails, type SubgraphUrls } from '../lib/direct.js';
import { ORDER_DETAILS, plannedFetches } from '../lib/operations.js';
import { restOrderDetails } from '../lib/rest.js';
import type { BenchContext, ScenarioResult } from '../lib/context.js';
import { NO_CACHE, postGraphQL } from './gateway.js';
import { COMMITTED_SUPERGRAPH } from '../../router/test/stack.js';

const NAMES: SubgraphName[] = ['users', 'products', 'orders', 'inventory'];

interface Counts {
  lines: number;
  fetches: Record<string, number>;
  statements: Record<string, number>;
  totalFetches: number;
  totalStatements: number;
}

/**
 * 7. Subgraph fetches and SQL statements per operation, for orders of 1 to 10
 * lines. The graph runs in this process (the router test stack), where each
 * subgraph's statement counter can be read; the outbox relays are stopped so
 * every statement counted is one the operation caused.
 */
export async function countsScenario(_ctx: BenchContext): Promise<ScenarioResult> {
  await loadIdentity();
  return withDevelopmentIdentity(countInTestStack);
}

async function countInTestStack(): Promise<ScenarioResult> {
  const stack = await startStack();
  try {
    for (const subgraph of Object.values(stack.subgraphs)) {
      await (subgraph.runtime as { relay?: OutboxRelay } | undefined)?.relay?.stop();
    }
    const headers = await login(stack.url, COMMITTED_SUPERGRAPH);
    const urls = Object.fromEntries(NAMES.map((n) => [n, stack.subgraphs[n].url])) as SubgraphUrls;
    const metricsUrl = stack.metricsUrl;
    const routerFetches = async () => {
      const text = await (await fetch(metricsUrl)).text();
      const counts: Record<string, number> = {};
      for (const m of text.matchAll(/^shop_router_subgraph_fetch_duration_seconds_count\{subgraph="(\w+)",outcome="\w+"\} (\d+)$/gm)) {
        counts[m[1]!] = (counts[m[1]!] ?? 0) + Number(m[2]);
      }
      return counts;
    };
    const statements = () => Object.fromEntries(NAMES.map((n) => [n, stack.subgraphs[n].db.statementCount]));
    const measure = async (lines: number, fetchCounts: () => Promise<Record<string, number>> | Record<string, number>, run: () => Promise<unknown>): Promise<Counts> => {
      const f0 = await fetchCounts();
      const s0 = statements();
      await run();
      const f1 = await fetchCounts();
      const s1 = statements();
      const fetches = Object.fromEntries(NAMES.map((n) => [n, (f1[n] ?? 0) - (f0[n] ?? 0)]));
      const sql = Object.fromEntries(NAMES.map((n) => [n, s1[n]! - s0[n]!]));
      const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
      return { lines, fetches, statements: sql, totalFetches: sum(fetches), totalStatements: sum(sql) };
    };
    const shop = demoShop();
    // One order of each size from 1 to 10 lines.
    const samples = [...new Map(shop.orders.map((o) => [o.lines.length, o])).values()].sort((a, b) => a.lines.length - b.lines.length);
    const direct = directOrderDetails(urls, plannedFetches(COMMITTED_SUPERGRAPH, ORDER_DETAILS));
    const calls = () => ({ ...directCalls });
    const rows: { router: Counts; cached: Counts; direct: Counts; rest: Counts }[] = [];
    const viaRouter = (id: string, extra: Record<string, string> = {}) => postGraphQL(stack.url, { query: ORDER_DETAILS, variables: { id } }, { ...headers, ...extra });
    for (const order of samples) {
      const lines = order.lines.length;
      // Without the entity cache (every fetch of the plan), then again once the cache holds the order's entities.
      const router = await measure(lines, routerFetches, () => viaRouter(order.id, NO_CACHE));
      for (let i = 0; i < 2; i++) await viaRouter(order.id);
      rows.push({
        router,
        cached: await measure(lines, routerFetches, () => viaRouter(order.id)),
        direct: await measure(lines, calls, () => direct(order.id)),
        rest: await measure(lines, calls, () => restOrderDetails(urls, order.id)),
      });
    }
    const maxFetches = Math.max(...rows.map((r) => r.router.totalFetches));
    const maxStatements = Math.max(...rows.map((r) => r.router.totalStatements));
    const ten = rows.find((r) => r.router.lines === 10)!;
    return {
      scenario: 'counts',
      title: 'Subgraph fetches and SQL statements per OrderDetails',
      rows,
      targets: [
        { goal: 'OrderDetails: <= 4 subgraph fetches, whatever the number of lines', measured: `at most ${maxFetches} (1 to 10 lines)`, met: maxFetches <= 4 },
        { goal: 'OrderDetails: <= 4 SQL statements, whatever the number of lines', measured: `at most ${maxStatements} (1 to 10 lines)`, met: maxStatements <= 4 },
        {
          goal: 'OrderDetails read again with the entity cache holding its entities (for comparison)',
          measured: `at most ${Math.max(...rows.map((r) => r.cached.totalFetches))} fetches, ${Math.max(...rows.map((r) => r.cached.totalStatements))} SQL statements`,
          met: true,
        },
        {
          goal: 'REST-style aggregation of a 10-line order (for comparison)',
          measured: `${ten.rest.totalFetches} service calls, ${ten.rest.totalStatements} SQL statements`,
          met: true,
        },
      ],
    };
  } finally {
    await stack.stop();
  }
}
