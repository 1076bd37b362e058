/**
 * Writes BENCHMARKS.md from bench/results/*.json and the hand-written
 * bench/analysis.md. Run by `npm run bench`; alone: `npx tsx bench/report.ts`.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ORDER = ['gateway', 'overhead', 'rest', 'subscriptions', 'worker', 'counts'];

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const load = (r: Json) => [r.requestsPerSecond, r.latencyMs.p50, r.latencyMs.p99, r.cpuMsPerRequest ?? '', r.cpuSystemMsPerRequest ?? '', r.cpuCores ?? '', r.requests, r.failed];
/** CPU ms per request of each process, e.g. "router 4.1, users 0.9, ...". */
const pairs = (cpu: Record<string, number>) =>
  Object.entries(cpu)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
const byProcess = (r: Json) => pairs((r.cpuMsPerRequestByProcess ?? {}) as Record<string, number>);
/** "machine 3.1 (router 1.2, users 0.3, ...)": the whole machine's CPU per request first, then each process's. */
const cpuLine = ({ machine, ...processes }: Record<string, number>) => `machine ${machine ?? '?'} (${pairs(processes)})`;
const cpuTotal = (r: Json) => Object.values((r.cpuMsPerRequestByProcess ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0).toFixed(2);
const LOAD_HEAD = ['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req (that process)', 'of which kernel', 'cores busy', 'requests', 'failed'];

function details(r: Json): string {
  switch (r.scenario) {
    case 'gateway':
      return table(LOAD_HEAD, [
        ['router', ...load(r.router.combined)],
        ...(r.routerNoCache ? [['router, no entity cache (no-cache requests)', ...load(r.routerNoCache.combined)]] : []),
        ['plain @apollo/gateway', ...load(r.baseline.combined)],
      ]) + `\n\nRatios router/baseline: CPU per request x${r.ratios.cpuPerRequest}, req/s x${r.ratios.requestsPerSecond}, p99 x${r.ratios.p99}.` +
        (r.routerNoCache
          ? ` Without the entity cache: CPU per request x${r.ratios.noCacheCpuPerRequest}, req/s x${r.ratios.noCacheRequestsPerSecond}, p99 x${r.ratios.noCacheP99}.`
          : '') +
        `\n\nCPU ms per request, every process: router run: ${byProcess(r.router.combined)}; ` +
        (r.routerNoCache ? `without the entity cache: ${byProcess(r.routerNoCache.combined)}; ` : '') +
        `baseline run: ${byProcess(r.baseline.combined)}.`;
    case 'overhead':
      return (
        `Fetches per request in both, in plan order (users and products side by side): ${r.fetches.join(', ')}.\n\n` +
        table(
          ['in flight', 'router p50 ms', 'direct p50 ms', 'added p50', 'router p99 ms', 'direct p99 ms', 'added p99'],
          Object.entries(r.summary as Record<string, Json>).map(([c, s]) => [
            c,
            s.router.p50,
            s.direct.p50,
            `${Math.round(s.addedP50 * 100)}%`,
            s.router.p99,
            s.direct.p99,
            `${Math.round(s.addedP99 * 100)}%`,
          ]),
        ) +
        Object.entries(r.summary as Record<string, Json>)
          .filter(([, s]) => s.cpuMsPerRequest)
          .map(
            ([c, s]) =>
              `\n\nCPU ms per request at ${c} in flight: through the router ${cpuLine(s.cpuMsPerRequest.router)}; ` +
              `direct ${cpuLine(s.cpuMsPerRequest.direct)}.`,
          )
          .join('')
      );
    case 'rest':
      return table(LOAD_HEAD, [
        ['federated (router)', ...load(r.federated.combined)],
        ...(r.federatedNoCache ? [['federated, no entity cache (no-cache requests)', ...load(r.federatedNoCache.combined)]] : []),
        ['REST-style aggregation', ...load(r.rest.combined)],
      ]) + `\n\nFederated/REST: req/s x${r.ratios.requestsPerSecond}; REST p99 / federated p99 x${r.ratios.p99}.` +
        (r.federatedNoCache ? ` Without the entity cache: req/s x${r.ratios.noCacheRequestsPerSecond}, p99 x${r.ratios.noCacheP99}.` : '') +
        `\n\nCPU ms per request, every process: federated ${cpuTotal(r.federated.combined)} (${byProcess(r.federated.combined)}); ` +
        (r.federatedNoCache ? `without the entity cache ${cpuTotal(r.federatedNoCache.combined)} (${byProcess(r.federatedNoCache.combined)}); ` : '') +
        `REST ${cpuTotal(r.rest.combined)} (${byProcess(r.rest.combined)}).` +
        (r.freshness
          ? `\n\nAfter the load, with the cache full: ${r.freshness.changedProducts} products got a new price and stock through the router; ` +
            `${r.freshness.equal} of ${r.freshness.checked} orders read through the router right after were equal to the REST-style answer (no cache).`
          : '');
    case 'subscriptions':
      return (
        `Router RSS before the first subscription (after the load scenarios): ${r.routerRssBeforeMiB} MiB; KiB/subscription is (RSS − that) / open.\n\n` +
        table(
          ['open', 'opened in s', 'router RSS MiB', 'KiB/subscription', 'changes', 'changes/s', 'delivered', 'delivery p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'mutation p50 ms', 'bench loop delay p99 / max ms', 'CPU ms per change', 'shared with (CPU ms per change)'],
          (r.levels as Json[]).map((l) => [
            l.subscriptions,
            l.openSeconds,
            l.routerRssMiB,
            Math.round(l.bytesPerSubscription / 1024),
            l.changes,
            l.changesPerSecond,
            `${l.deliveries}/${l.deliveriesExpected}`,
            l.deliveryMs.p50,
            l.deliveryMs.p90,
            l.deliveryMs.p99,
            l.deliveryMs.max,
            l.mutationMs.p50,
            l.benchLoopDelayMs ? `${l.benchLoopDelayMs.p99} / ${l.benchLoopDelayMs.max}` : '',
            Object.entries((l.cpuMsPerChange ?? {}) as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(', '),
            Object.entries((l.sharedCpuMsPerChange ?? {}) as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(', '),
          ]),
        )
      );
    case 'worker':
      return table(
        ['concurrency', 'jobs', 'completed', 'failed', 'recorded', 'database', 'seconds', 'jobs/s'],
        ((r.runs ?? [r]) as Json[]).map((d) => [d.concurrency, d.jobs, d.completed, d.failed, d.recorded, r.database, d.seconds, d.jobsPerSecond]),
      );
    case 'counts':
      return table(
        ['lines', 'router fetches', 'router SQL', 'router fetches, cached', 'router SQL, cached', 'direct fetches', 'direct SQL', 'REST calls', 'REST SQL'],
        (r.rows as Json[]).map((row) => [
          row.router.lines,
          row.router.totalFetches,
          row.router.totalStatements,
          row.cached?.totalFetches ?? '',
          row.cached?.totalStatements ?? '',
          row.direct.totalFetches,
          row.direct.totalStatements,
          row.rest.totalFetches,
          row.rest.totalStatements,
        ]),
      );
    default:
      return '';
  }
}

export async function writeReport(resultsDir: string, out: string): Promise<void> {
  const files = (await readdir(resultsDir)).filter((f) => f.endsWith('.json'));
  const results = (await Promise.all(files.map(async (f) => JSON.parse(await readFile(path.join(resultsDir, f), 'utf8')) as Json))).sort(
    (a, b) => ORDER.indexOf(a.scenario) - ORDER.indexOf(b.scenario),
  );
  if (results.length === 0) throw new Error(`no results in ${resultsDir}`);
  const m = results[0]!.machine as Json;
  const s = results[0]!.settings as Json;
  const analysis = await readFile(path.join(path.dirname(fileURLToPath(import.meta.url)), 'analysis.md'), 'utf8').catch(() => '');
  const lines = [
    '# Benchmarks',
    '',
    '<!-- Generated by bench/report.ts from bench/results/*.json and bench/analysis.md; edit those, not this file. -->',
    '',
    // Runs before the command recorded the server had it at the default address of this machine.
    `Command: \`${results[0]!.storage === 'postgres' && !String(results[0]!.command).includes('BENCH_DATABASE_URL') ? 'BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres ' : ''}${results[0]!.command}\` ` +
      `(each scenario's JSON in \`bench/results/\`). Storage: ${results[0]!.storage === 'postgres' ? 'databases of the bench\'s own on that PostgreSQL server, dropped afterwards' : 'embedded PGlite'}; ` +
      'Redis on 127.0.0.1:6379 under a bench-only key prefix, deleted afterwards.',
    '',
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}. Versions: ${Object.entries(m.packages as Record<string, string>)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
    '',
    `Code: commit ${m.commit ?? 'unknown'}${
      results.some((r) => (r.machine as Json).uncommittedChanges) ? ' (the shared checkout had uncommitted changes of other work during some scenarios)' : ''
    }.`,
    '',
    `Load: ${s.connections} connections (requests in flight), ${s.rounds} runs of ${s.seconds} s per target after ${s.warmupSeconds} s of warm-up, targets in turns (A B then B A); requests spread over all ${'2,000'} seeded orders. ` +
      'Every service is its own process, run as deployed (NODE_ENV=production); CPU time is read from /proc for the measured process only.',
    '',
    '## Targets',
    '',
    table(
      ['scenario', 'goal', 'measured', 'met', 'measured at (UTC)', 'load average before → after'],
      results.flatMap((r) =>
        (r.targets as Json[]).map((t) => [
          r.scenario,
          t.goal,
          t.measured,
          t.met ? 'yes' : '**no**',
          String(r.measuredAt).slice(0, 19).replace('T', ' '),
          `${(r.loadavgBefore as number[]).map((x) => x.toFixed(1)).join(' ')} → ${(r.loadavgAfter as number[]).map((x) => x.toFixed(1)).join(' ')}`,
        ]),
      ),
    ),
    '',
    ...results.flatMap((r) => [`## ${r.title}`, '', details(r), '']),
    analysis.trim(),
    '',
  ];
  await writeFile(out, lines.join('\n'));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  await writeReport(path.join(root, 'bench/results'), path.join(root, 'BENCHMARKS.md'));
}
