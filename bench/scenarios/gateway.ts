import { deepStrictEqual } from 'node:assert/strict';
import { startService } from '../lib/processes.js';
import { postJson } from '../lib/http.js';
import { combine, loadHttp, round, type HttpTarget, type LoadResult } from '../lib/load.js';
import { ORDER_DETAILS } from '../lib/operations.js';
import type { BenchContext, ScenarioResult } from '../lib/context.js';

/** Asks the router for fresh data: its entity cache is neither read nor filled, so it makes every fetch of the plan. */
export const NO_CACHE = { 'cache-control': 'no-cache' } as const;

export function graphqlTarget(name: string, url: string, pid: number, ctx: BenchContext, headers: Record<string, string> = {}): HttpTarget {
  return {
    name,
    url,
    pid,
    alsoWatch: subgraphPids(ctx),
    headers: { ...ctx.authHeaders, ...headers },
    request: (i) => ({
      method: 'POST',
      body: JSON.stringify({ query: ORDER_DETAILS, operationName: 'OrderDetails', variables: { id: ctx.orderIds[i % ctx.orderIds.length] } }),
    }),
  };
}

/** The subgraph processes, whose CPU per request is reported beside the target's. */
export function subgraphPids(ctx: BenchContext): Record<string, number> {
  return Object.fromEntries(Object.entries(ctx.stack.subgraphs).map(([name, s]) => [name, s.pid]));
}

export async function postGraphQL<T>(url: string, body: object, headers: Record<string, string> = {}): Promise<T> {
  const res = await postJson(url, body, headers);
  const json = res.json as { data?: T; errors?: unknown[] };
  if (res.status !== 200 || json.errors || !json.data) throw new Error(`${url} answered ${res.status}: ${JSON.stringify(json.errors ?? json)}`);
  return json.data;
}

/**
 * Runs targets in turn, A B then B A ..., after a warm-up of each, so slow drift of
 * the machine (other jobs, thermal) falls on both alike.
 */
export async function compareInTurns(ctx: BenchContext, targets: HttpTarget[]): Promise<Record<string, { combined: LoadResult; runs: LoadResult[] }>> {
  const { connections, seconds, warmupSeconds, rounds } = ctx.settings;
  for (const target of targets) await loadHttp(target, connections, warmupSeconds);
  const runs = new Map<string, LoadResult[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) runs.get(target.name)!.push(await loadHttp(target, connections, seconds));
  }
  return Object.fromEntries([...runs].map(([name, list]) => [name, { combined: combine(list), runs: list }]));
}

/** 1 and 2: OrderDetails through the router and through a plain @apollo/gateway, same subgraphs, same requests. */
export async function gatewayScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const baseline = await startService('baseline', 'bench/baseline-gateway.ts', {
    SUPERGRAPH_PATH: ctx.stack.supergraphPath,
    APOLLO_TELEMETRY_DISABLED: 'true',
  }, {
    ready: (origin) =>
      fetch(`${origin}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{__typename}"}' }).then((r) => r.ok, () => false),
  });
  try {
    const baselineUrl = `${baseline.origin}/`;
    // Same answers from both, or the comparison means nothing.
    for (const id of ctx.orderIds.slice(0, 20)) {
      const body = { query: ORDER_DETAILS, variables: { id } };
      deepStrictEqual(await postGraphQL(baselineUrl, body, ctx.authHeaders), await postGraphQL(ctx.routerUrl, body, ctx.authHeaders));
    }
    const router = graphqlTarget('router', ctx.routerUrl, ctx.router.pid, ctx);
    const uncached = graphqlTarget('routerNoCache', ctx.routerUrl, ctx.router.pid, ctx, NO_CACHE);
    const gateway = graphqlTarget('baseline', baselineUrl, baseline.pid, ctx);
    const results = await compareInTurns(ctx, [router, uncached, gateway]);
    const r = results.router!.combined;
    const u = results.routerNoCache!.combined;
    const b = results.baseline!.combined;
    const cpuRatio = round(r.cpuMsPerRequest! / b.cpuMsPerRequest!, 3);
    const uncachedRatio = round(u.cpuMsPerRequest! / b.cpuMsPerRequest!, 3);
    return {
      scenario: 'gateway',
      title: 'OrderDetails: router vs plain @apollo/gateway',
      router: results.router,
      routerNoCache: results.routerNoCache,
      baseline: results.baseline,
      ratios: {
        cpuPerRequest: cpuRatio,
        requestsPerSecond: round(r.requestsPerSecond / b.requestsPerSecond, 3),
        p99: round(r.latencyMs.p99 / b.latencyMs.p99, 3),
        noCacheCpuPerRequest: uncachedRatio,
        noCacheRequestsPerSecond: round(u.requestsPerSecond / b.requestsPerSecond, 3),
        noCacheP99: round(u.latencyMs.p99 / b.latencyMs.p99, 3),
      },
      targets: [
        {
          goal: 'router CPU per OrderDetails <= 1/2 of the plain gateway',
          measured: `${r.cpuMsPerRequest} ms vs ${b.cpuMsPerRequest} ms (x${cpuRatio})`,
          met: cpuRatio <= 0.5,
        },
        {
          goal: 'more requests/s than the plain gateway',
          measured: `${r.requestsPerSecond} vs ${b.requestsPerSecond} req/s`,
          met: r.requestsPerSecond > b.requestsPerSecond,
        },
        {
          goal: 'lower p99 than the plain gateway',
          measured: `${r.latencyMs.p99} vs ${b.latencyMs.p99} ms`,
          met: r.latencyMs.p99 < b.latencyMs.p99,
        },
        {
          goal: 'same, without the entity cache (every request with Cache-Control: no-cache): CPU <= 1/2, more req/s, lower p99',
          measured: `${u.cpuMsPerRequest} ms (x${uncachedRatio}), ${u.requestsPerSecond} req/s, p99 ${u.latencyMs.p99} ms`,
          met: uncachedRatio <= 0.5 && u.requestsPerSecond > b.requestsPerSecond && u.latencyMs.p99 < b.latencyMs.p99,
        },
        {
          goal: 'no failed requests',
          measured: `${r.failed} router, ${u.failed} router without cache, ${b.failed} baseline`,
          met: r.failed === 0 && u.failed === 0 && b.failed === 0,
        },
      ],
    };
  } finally {
    await baseline.stop();
  }
}
