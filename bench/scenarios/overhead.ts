import { deepStrictEqual } from 'node:assert/strict';
import { directOrderDetails } from '../lib/direct.js';
import { combine, loadLoop, round, type LoadResult } from '../lib/load.js';
import { benchCpuMs, cpuMsOfCommandSince, cpuTimeMs, machineBusyMs } from '../lib/processes.js';
import { ORDER_DETAILS, plannedFetches } from '../lib/operations.js';
import type { BenchContext, ScenarioResult } from '../lib/context.js';
import { NO_CACHE, postGraphQL, subgraphPids } from './gateway.js';

const percent = (fraction: number) => `${fraction >= 0 ? '+' : ''}${Math.round(fraction * 100)}%`;

/**
 * 3. The router's overhead: OrderDetails through the router against the same
 * fetches (the plan's own operation texts) made by the client itself, with the
 * same HTTP client and loop, at one request in flight (the latency a request
 * pays) and at the load concurrency. Router requests ask for fresh data (no-cache), so the router makes every
 * fetch of the plan too: with its entity cache it would make fewer, and the comparison would not be like for like.
 */
export async function overheadScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const fetches = plannedFetches(ctx.stack.supergraphPath, ORDER_DETAILS);
  const direct = directOrderDetails(ctx.stack.urls, fetches);
  const viaRouter = (id: string) => postGraphQL(ctx.routerUrl, { query: ORDER_DETAILS, variables: { id } }, { ...ctx.authHeaders, ...NO_CACHE });
  for (const id of ctx.orderIds.slice(0, 20)) deepStrictEqual(await direct(id), await viaRouter(id));

  const { seconds, warmupSeconds, rounds, connections } = ctx.settings;
  const id = (i: number) => ctx.orderIds[i % ctx.orderIds.length]!;
  // Where each path's CPU goes, per request: the router, the subgraphs, PostgreSQL, the load generator (which makes
  // the four fetches itself on the direct path) and the whole machine.
  const watch = (): Record<string, () => number> => ({
    ...Object.fromEntries(Object.entries({ router: ctx.router.pid, ...subgraphPids(ctx) }).map(([name, pid]) => [name, () => cpuTimeMs(pid)])),
    postgres: cpuMsOfCommandSince('postgres'),
    bench: benchCpuMs,
    machine: machineBusyMs,
  });
  const levels: Record<string, { router: LoadResult[]; direct: LoadResult[] }> = {};
  for (const concurrency of [1, connections]) {
    await loadLoop('router', concurrency, warmupSeconds, (i) => viaRouter(id(i)));
    await loadLoop('direct', concurrency, warmupSeconds, (i) => direct(id(i)));
    const runs = { router: [] as LoadResult[], direct: [] as LoadResult[] };
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['router', 'direct'] as const) : (['direct', 'router'] as const);
      for (const which of order) {
        runs[which].push(await loadLoop(which, concurrency, seconds, (i) => (which === 'router' ? viaRouter(id(i)) : direct(id(i))), watch()));
      }
    }
    levels[String(concurrency)] = runs;
  }
  const summary = Object.fromEntries(
    Object.entries(levels).map(([c, runs]) => {
      const p = (list: LoadResult[], pick: (r: LoadResult) => number) => list.reduce((s, r) => s + pick(r) * r.requests, 0) / list.reduce((s, r) => s + r.requests, 0);
      const router = { p50: round(p(runs.router, (r) => r.latencyMs.p50), 2), p99: round(p(runs.router, (r) => r.latencyMs.p99), 2) };
      const directStats = { p50: round(p(runs.direct, (r) => r.latencyMs.p50), 2), p99: round(p(runs.direct, (r) => r.latencyMs.p99), 2) };
      const cpuMsPerRequest = {
        router: combine(runs.router).cpuMsPerRequestByProcess ?? {},
        direct: combine(runs.direct).cpuMsPerRequestByProcess ?? {},
      };
      return [
        c,
        { router, direct: directStats, addedP50: round(router.p50 / directStats.p50 - 1, 3), addedP99: round(router.p99 / directStats.p99 - 1, 3), cpuMsPerRequest },
      ];
    }),
  );
  const single = summary['1']!;
  const loaded = summary[String(connections)]!;
  return {
    scenario: 'overhead',
    title: 'Router overhead: OrderDetails vs the same subgraph fetches made directly',
    fetches: fetches.map((f) => f.service),
    summary,
    runs: levels,
    targets: [
      {
        goal: 'router adds <= 30% to the latency of the same fetches (p50, one request in flight)',
        measured: `${single.router.p50} ms vs ${single.direct.p50} ms (${percent(single.addedP50)})`,
        met: single.addedP50 <= 0.3,
      },
      {
        goal: `same, at ${connections} in flight (p50)`,
        measured: `${loaded.router.p50} ms vs ${loaded.direct.p50} ms (${percent(loaded.addedP50)})`,
        met: loaded.addedP50 <= 0.3,
      },
    ],
  };
}
