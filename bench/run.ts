/**
 * `npm run bench`: starts the stack (subgraphs, router) as separate processes on
 * databases and a Redis prefix of its own, runs each scenario, writes
 * bench/results/<scenario>.json and regenerates BENCHMARKS.md.
 *   --smoke            a few seconds per scenario, small subscription counts (CI)
 *   --only a,b         only these scenarios (gateway, overhead, rest, subscriptions, worker, counts)
 *   --cpu-prof a,b     write V8 CPU profiles of these services (router, users, products, orders, inventory) to bench/profiles/
 *   --seconds N        length of each measured run
 *   --subscriptions a,b  subscription counts to open in turn
 * Environment: BENCH_DATABASE_URL (a PostgreSQL server to create bench databases on;
 * embedded PGlite otherwise), REDIS_URL (default redis://127.0.0.1:6379); NODE_ENV (production unless set).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { demoShop } from '@shop/common';
import { loadIdentity, login } from './lib/auth.js';
import type { BenchContext, BenchSettings, ScenarioResult } from './lib/context.js';
import { machine } from './lib/machine.js';
import { killAllServicesNow, ROOT, startService, stopAllServices } from './lib/processes.js';
import { createStorage, startSubgraphs } from './lib/stack.js';
import { writeReport } from './report.js';
import { countsScenario } from './scenarios/counts.js';
import { gatewayScenario } from './scenarios/gateway.js';
import { overheadScenario } from './scenarios/overhead.js';
import { restScenario } from './scenarios/rest.js';
import { subscriptionsScenario } from './scenarios/subscriptions.js';
import { workerScenario } from './scenarios/worker.js';

const SCENARIOS: Record<string, (ctx: BenchContext) => Promise<ScenarioResult>> = {
  gateway: gatewayScenario,
  overhead: overheadScenario,
  rest: restScenario,
  subscriptions: subscriptionsScenario,
  worker: workerScenario,
  counts: countsScenario,
};

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    only: { type: 'string' },
    'cpu-prof': { type: 'string' },
    seconds: { type: 'string' },
    subscriptions: { type: 'string' },
  },
});
const smoke = values.smoke;
const only = values.only?.split(',').map((s) => s.trim()) ?? Object.keys(SCENARIOS);
for (const name of only) if (!SCENARIOS[name]) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
const resultsDir = path.join(ROOT, 'bench', smoke ? 'results/smoke' : 'results');
const profileDir = path.join(ROOT, 'bench', 'profiles');

const settings: BenchSettings = smoke
  ? {
      smoke,
      connections: 8,
      seconds: 2,
      warmupSeconds: 1,
      rounds: 1,
      subscriptionCounts: [20, 100],
      statusChangesPerSecond: 20,
      statusChangeSeconds: 1,
      workerJobs: 300,
      routerNodeArgs: [],
    }
  : {
      smoke,
      connections: 16,
      seconds: 15,
      warmupSeconds: 5,
      rounds: 2,
      subscriptionCounts: [1_000, 10_000],
      statusChangesPerSecond: 200,
      statusChangeSeconds: 5,
      workerJobs: 10_000,
      routerNodeArgs: [],
    };
if (values.seconds) settings.seconds = Number(values.seconds);
if (values.subscriptions) settings.subscriptionCounts = values.subscriptions.split(',').map(Number);
const profiled = new Set(values['cpu-prof']?.split(',').map((s) => s.trim()) ?? []);
const profileArgs = (name: string) => (profiled.has(name) ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}/${name}`] : []);
settings.routerNodeArgs = profileArgs('router');

/** How the run named its database server, password left out. */
function serverPrefix(): string {
  const given = process.env.BENCH_DATABASE_URL;
  if (!given) return '';
  const url = new URL(given);
  if (url.password) url.password = '***';
  return `BENCH_DATABASE_URL=${url.toString()} `;
}

const log = (message: string) => process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

// No service may outlive the bench, however it ends.
process.on('exit', killAllServicesNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping`);
    void stopAllServices().finally(() => process.exit(130));
  });
}

// Every process (router, baseline, subgraphs, REST service) runs as deployed: NODE_ENV=production (no
// introspection, masked errors, graphql-js without its development-only checks), with secrets of this run.
process.env.NODE_ENV ??= 'production';
process.env.JWT_SECRET ??= randomBytes(32).toString('base64url');
process.env.IDENTITY_SECRET ??= randomBytes(32).toString('base64url');

const storage = await createStorage();
const workDir = await mkdtemp(path.join(tmpdir(), 'shop-bench-run-'));
let failed = false;
try {
  await mkdir(resultsDir, { recursive: true });
  for (const name of profiled) await mkdir(path.join(profileDir, name), { recursive: true });
  await loadIdentity();
  log(`storage: ${storage.kind}, Redis prefix ${storage.prefix}; starting subgraphs (migrate + seed)`);
  const stack = await startSubgraphs(storage, workDir, profileArgs);
  log('starting the router');
  const router = await startService(
    'router',
    'router/src/main.ts',
    { ...storage.env, SUPERGRAPH_PATH: stack.supergraphPath, RATE_LIMIT_MAX: '0', METRICS_PORT: '0' },
    { nodeArgs: settings.routerNodeArgs, healthPath: '/ready' },
  );
  const routerUrl = `${router.origin}/graphql`;
  const ctx: BenchContext = {
    settings,
    storage,
    stack,
    router,
    routerUrl,
    authHeaders: await login(routerUrl, stack.supergraphPath),
    orderIds: demoShop().orders.map((o) => o.id),
    workDir,
  };
  const started = { at: new Date().toISOString(), loadavg: loadavg() };
  for (const name of only) {
    log(`scenario ${name}`);
    const t0 = performance.now();
    try {
      const result = await SCENARIOS[name]!(ctx);
      const record = {
        ...result,
        measuredAt: new Date().toISOString(),
        durationSeconds: Math.round((performance.now() - t0) / 100) / 10,
        command: `${serverPrefix()}npm run bench${smoke ? ' -- --smoke' : ''}`,
        settings,
        storage: storage.kind,
        machine: await machine(),
        loadavgBefore: started.loadavg,
        loadavgAfter: loadavg(),
      };
      await writeFile(path.join(resultsDir, `${name}.json`), `${JSON.stringify(record, null, 2)}\n`);
      for (const t of result.targets) log(`  ${t.met ? 'met   ' : 'MISSED'} ${t.goal}: ${t.measured}`);
    } catch (error) {
      failed = true;
      log(`scenario ${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  }
} catch (error) {
  failed = true;
  log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  await stopAllServices();
  await storage.cleanup().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
  await rm(workDir, { recursive: true, force: true });
}
if (!smoke && !failed) await writeReport(resultsDir, path.join(ROOT, 'BENCHMARKS.md'));
log(failed ? 'done, with failures' : `done: results in ${path.relative(ROOT, resultsDir)}/`);
process.exit(failed ? 1 : 0);
