import autocannon from 'autocannon';
import { cpuTimeMs, cpuTimes } from './processes.js';

/** One measured run against one target at a fixed concurrency. */
export interface LoadResult {
  target: string;
  connections: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; mean: number; max: number };
  /** Responses that were not 2xx, carried GraphQL errors, or never came (connection errors, timeouts). */
  failed: number;
  /** CPU time (user + system) of the measured process over the run, per completed request. */
  cpuMsPerRequest?: number;
  /** The kernel's share of it (system time: sockets, mostly). */
  cpuSystemMsPerRequest?: number;
  /** That process's CPU time over the run divided by the wall time: 1 is one core busy. */
  cpuCores?: number;
  /** CPU time per completed request of every process of the stack (the target's own and the subgraphs'). */
  cpuMsPerRequestByProcess?: Record<string, number>;
}

export interface HttpTarget {
  name: string;
  url: string;
  /** The request for the i-th call (spread over the seeded orders). */
  request(i: number): { method: 'GET' | 'POST'; path?: string; body?: string };
  headers?: Record<string, string>;
  /** Process whose CPU time is charged to the target. */
  pid?: number;
  /** Other processes whose CPU time per request is reported beside (the subgraphs). */
  alsoWatch?: Record<string, number>;
}

/**
 * Drives a target with autocannon at a fixed number of connections for a fixed
 * time (each connection has one request in flight), and reads the target process's
 * CPU time before and after.
 */
export async function loadHttp(target: HttpTarget, connections: number, seconds: number): Promise<LoadResult> {
  let next = 0;
  let graphqlErrors = 0;
  const cpuBefore = target.pid ? cpuTimes(target.pid) : undefined;
  const watched = { ...(target.pid ? { [target.name]: target.pid } : {}), ...target.alsoWatch };
  const watchedBefore = Object.fromEntries(Object.entries(watched).map(([name, pid]) => [name, cpuTimeMs(pid)]));
  const started = performance.now();
  const result = await autocannon({
    url: target.url,
    connections,
    duration: seconds,
    headers: { 'content-type': 'application/json', ...target.headers },
    requests: [
      {
        setupRequest: (req) => ({ ...req, ...target.request(next++) }),
        onResponse: (_status, body) => {
          if (body.includes('"errors"')) graphqlErrors++;
        },
      },
    ],
  });
  const wallMs = performance.now() - started;
  const cpuAfter = target.pid ? cpuTimes(target.pid) : undefined;
  const cpuMs = cpuBefore && cpuAfter ? cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system : undefined;
  const systemMs = cpuBefore && cpuAfter ? cpuAfter.system - cpuBefore.system : 0;
  const requests = result.requests.total;
  const byProcess = Object.fromEntries(
    Object.entries(watched).map(([name, pid]) => [name, round((cpuTimeMs(pid) - watchedBefore[name]!) / Math.max(requests, 1), 3)]),
  );
  return {
    target: target.name,
    connections,
    seconds: result.duration,
    requests,
    requestsPerSecond: round(requests / result.duration),
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      mean: round(result.latency.average),
      max: result.latency.max,
    },
    failed: result.non2xx + result.errors + graphqlErrors,
    ...(cpuMs === undefined
      ? {}
      : {
          cpuMsPerRequest: round(cpuMs / Math.max(requests, 1), 3),
          cpuSystemMsPerRequest: round(systemMs / Math.max(requests, 1), 3),
          cpuCores: round(cpuMs / wallMs, 2),
        }),
    cpuMsPerRequestByProcess: byProcess,
  };
}

/**
 * A closed loop for clients that are more than one HTTP request (the direct
 * fetches): `concurrency` loops, each starting its next call when the last ends.
 */
export async function loadLoop(
  name: string,
  concurrency: number,
  seconds: number,
  call: (i: number) => Promise<unknown>,
  /** CPU time readers (cumulative ms) whose growth per completed request is reported, by name. */
  watch: Record<string, () => number> = {},
): Promise<LoadResult> {
  const watchedBefore = Object.fromEntries(Object.entries(watch).map(([process, read]) => [process, read()]));
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await call(next++);
          latencies.push(performance.now() - t0);
        } catch {
          failed++;
        }
      }
    }),
  );
  const wall = (performance.now() - started) / 1000;
  const byProcess = Object.fromEntries(
    Object.entries(watch).map(([process, read]) => [process, round((read() - watchedBefore[process]!) / Math.max(latencies.length, 1), 3)]),
  );
  const stats = summarize(latencies);
  return {
    target: name,
    connections: concurrency,
    seconds: round(wall, 2),
    requests: latencies.length,
    requestsPerSecond: round(latencies.length / wall),
    latencyMs: { p50: stats.p50, p90: stats.p90, p99: stats.p99, mean: stats.mean, max: stats.max },
    failed,
    ...(Object.keys(watch).length ? { cpuMsPerRequestByProcess: byProcess } : {}),
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function summarize(values: readonly number[]): { p50: number; p90: number; p99: number; mean: number; max: number; count: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / Math.max(sorted.length, 1);
  return {
    p50: round(percentile(sorted, 50), 2),
    p90: round(percentile(sorted, 90), 2),
    p99: round(percentile(sorted, 99), 2),
    mean: round(mean, 2),
    max: round(sorted[sorted.length - 1] ?? 0, 2),
    count: sorted.length,
  };
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Sums runs of the same target (rounds taken in turn with another target) into one result. */
export function combine(runs: readonly LoadResult[]): LoadResult {
  const first = runs[0]!;
  const requests = runs.reduce((s, r) => s + r.requests, 0);
  const seconds = runs.reduce((s, r) => s + r.seconds, 0);
  const weighted = (pick: (r: LoadResult) => number) => round(runs.reduce((s, r) => s + pick(r) * r.requests, 0) / Math.max(requests, 1), 2);
  const cpu = runs.every((r) => r.cpuMsPerRequest !== undefined);
  return {
    target: first.target,
    connections: first.connections,
    seconds: round(seconds, 2),
    requests,
    requestsPerSecond: round(requests / seconds),
    // Percentiles of several runs are not additive; the request-weighted mean of each run's percentile is close
    // when the runs are alike, and every run is kept in the results beside it.
    latencyMs: {
      p50: weighted((r) => r.latencyMs.p50),
      p90: weighted((r) => r.latencyMs.p90),
      p99: weighted((r) => r.latencyMs.p99),
      mean: weighted((r) => r.latencyMs.mean),
      max: Math.max(...runs.map((r) => r.latencyMs.max)),
    },
    failed: runs.reduce((s, r) => s + r.failed, 0),
    cpuMsPerRequestByProcess: Object.fromEntries(
      Object.keys(first.cpuMsPerRequestByProcess ?? {}).map((name) => [name, weighted((r) => r.cpuMsPerRequestByProcess?.[name] ?? 0)]),
    ),
    ...(cpu
      ? {
          cpuMsPerRequest: weighted((r) => r.cpuMsPerRequest!),
          cpuSystemMsPerRequest: weighted((r) => r.cpuSystemMsPerRequest ?? 0),
          cpuCores: round(runs.reduce((s, r) => s + r.cpuCores! * r.seconds, 0) / seconds, 2),
        }
      : {}),
  };
}
