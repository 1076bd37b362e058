/**
 * Scale-out test (`npm run test:scale`): two routers, two replicas of each subgraph and two notification workers,
 * each a production process, on a private PostgreSQL and redis-server, with HAProxy in front of every tier. Under a
 * steady mixed load through the router frontend (OrderDetails queries, placeOrder and cancelOrder, orders followed
 * live over graphql-ws while they are cancelled or shipped and delivered), it kills one replica of each tier in turn
 * and restarts it, then restarts every replica of every tier one after the other (SIGTERM). After each phase it
 * asserts: no query failed as a client sees it, no mutation failed after the client's retries (same idempotency
 * key), no order or notification lost or doubled (the fault test's checks), every followed order's status changes
 * reached its subscriber, and the routers share APQ, rate limits and entity cache invalidations. Exits non-zero when a
 * check fails.
 *
 * Settings: SCALE_PHASE_MS (load before and after each fault, 5000), SCALE_KEEP_LOGS=true (keep the logs when it passed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEMO_ADMIN, demoShop, readBool, readInt } from '@shop/common';
import { check, readSnapshot, settle, type Known, type Verdict } from '../faults/consistency.js';
import { login, loginCustomers } from '../faults/customers.js';
import { OrderLoad, type Customer, type LoadTally } from '../faults/order-load.js';
import { logSummary, table } from '../faults/report.js';
import { sleep } from '../faults/service-process.js';
import { LiveOrders, missedStatuses, type LiveTally } from './live-orders.js';
import { QueryLoad, type QueryTally } from './query-load.js';
import { CLIENT_TIMEOUT_MS, REPLICAS, ScaleStack, TIERS, type Replica } from './scale-stack.js';
import { entityCacheShared, persistedQueryShared, rateLimitShared, type SharedCheck } from './shared-state.js';

const out = (line: string) => process.stdout.write(`${line}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
const elapsed = (since: number) => seconds(Date.now() - since);

const PHASE_MS = readInt(process.env, 'SCALE_PHASE_MS', 5_000, 1_000);
const KEEP_LOGS = readBool(process.env, 'SCALE_KEEP_LOGS', false);
const BASELINE_MS = 20_000;
const SETTLE_MS = 60_000;
const CUSTOMERS = 10;
/** The load: placeOrder and OrderDetails per second, and orders followed live started per second. */
const ORDERS_PER_SECOND = 2;
const QUERIES_PER_SECOND = 4;
const FOLLOWED_PER_SECOND = 0.5;
/**
 * Followed orders placed at the start of each phase and held CONFIRMED until its fault is over: their subscriptions
 * are open on both routers (HAProxy balances by least connections) when one of them dies.
 */
const HELD_SUBSCRIBERS = 6;
/** The whole run's bound: it stops by itself, whatever hangs. */
const RUN_LIMIT_MS = 20 * 60_000;
/** Client failures that are answers, not faults: cancelling an order its reservation already rejected. */
const EXPECTED_FAILURES = new Set(['cancelOrder:INVALID_TRANSITION']);

/** One phase: what is done to the stack while the load runs; resolves once every replica is back in rotation. */
interface Phase {
  name: string;
  run(stack: ScaleStack): Promise<string>;
}

async function restart(stack: ScaleStack, replica: Replica, how: 'kill' | 'stop'): Promise<string> {
  const pid = replica.process.pid;
  const downAt = Date.now();
  if (how === 'kill') {
    await replica.process.kill();
    await sleep(2_000);
  } else {
    await replica.process.stop();
  }
  const exitedAfter = Date.now() - downAt;
  const startAt = Date.now();
  await replica.process.start();
  await stack.waitInRotation(replica);
  return `${replica.name} (pid ${pid}) ${how === 'kill' ? 'killed, down 2s' : `stopped in ${seconds(exitedAfter)}`}, back in rotation after ${elapsed(startAt)}`;
}

const PHASES: readonly Phase[] = [
  { name: 'baseline', run: async () => (await sleep(BASELINE_MS - 2 * PHASE_MS), 'nothing done') },
  ...TIERS.map((tier, i): Phase => ({
    name: `kill -9 ${tier}`,
    // Alternately the first and the second replica of a tier.
    run: (stack) => restart(stack, stack.tier(tier)[i % REPLICAS]!, 'kill'),
  })),
  {
    name: 'rolling restart',
    // Every tier at once, as `kubectl rollout restart` of all deployments does; within a tier one replica at a time,
    // the next only once the restarted one is back in HAProxy's rotation.
    async run(stack) {
      const started = Date.now();
      const took: string[] = [];
      await Promise.all(
        TIERS.map(async (tier) => {
          for (const replica of stack.tier(tier)) {
            const t = Date.now();
            await restart(stack, replica, 'stop');
            took.push(`${replica.name} ${elapsed(t)}`);
          }
        }),
      );
      return `${took.length} replicas restarted, one at a time per tier, in ${elapsed(started)} (${took.join(', ')})`;
    },
  },
];

interface PhaseResult {
  name: string;
  observed: string;
  load: LoadTally;
  queries: QueryTally;
  live: LiveTally;
  balancerRetries: number;
  verdict: Verdict;
  settleSeconds: number | undefined;
  followed: number;
  expectedEvents: number;
  missedEvents: string[];
  subscriptionErrors: Map<string, number>;
  shared: SharedCheck[];
  died: string[];
  problems: string[];
}

function count(map: Map<string, number>, filter: (key: string) => boolean = () => true): number {
  let n = 0;
  for (const [key, value] of map) if (filter(key)) n += value;
  return n;
}

function describe(map: Map<string, number>): string {
  return map.size === 0 ? '-' : [...map].sort(([, a], [, b]) => b - a).map(([key, n]) => `${key} ${n}`).join(', ');
}

interface Context {
  stack: ScaleStack;
  orderLoad: OrderLoad;
  queryLoad: QueryLoad;
  liveOrders: LiveOrders;
  seed: Known & { stock: Map<string, number> };
  admin: Customer;
  cacheTarget: { orderId: string; productId: string };
}

async function runPhase(context: Context, phase: Phase, index: number): Promise<PhaseResult> {
  const { stack } = context;
  const phaseStart = Date.now();
  const before = await readSnapshot(stack.databaseUrls);
  const known: Known = { orders: new Set(before.orders.keys()), users: before.userIds };
  const retriesBefore = await stack.balancerRetries();
  for (const replica of stack.replicas) replica.process.note(`phase "${phase.name}" begins`);
  context.orderLoad.start();
  context.queryLoad.start();
  const held = context.liveOrders.start(HELD_SUBSCRIBERS);
  await sleep(PHASE_MS);
  out(`  ${elapsed(phaseStart)} ${phase.name}`);
  for (const replica of stack.replicas) replica.process.note(`"${phase.name}" starts`);
  const observed = await phase.run(stack);
  held.release();
  out(`  ${elapsed(phaseStart)} ${observed}`);
  await sleep(PHASE_MS);
  const [load, queries, live] = await Promise.all([context.orderLoad.stop(), context.queryLoad.stop(), context.liveOrders.stop()]);
  out(`  ${elapsed(phaseStart)} load stopped; settling`);
  const placed = new Set([...load.placed, ...live.orders.map((o) => o.id)]);
  const { verdict, seconds: settleSeconds, snapshot } = await settle(stack.databaseUrls, context.seed, known, { ...load, placed }, SETTLE_MS);

  let expectedEvents = 0;
  const missedEvents: string[] = [];
  const subscriptionErrors = new Map<string, number>();
  for (const order of live.orders) {
    const history = snapshot.history.get(order.id) ?? [];
    expectedEvents += history.length;
    for (const status of missedStatuses(order, history)) missedEvents.push(`${order.id} ${status} (saw ${order.events.map((e) => e.status).join(',') || 'nothing'})`);
    for (const error of order.errors) subscriptionErrors.set(error.slice(0, 80), (subscriptionErrors.get(error.slice(0, 80)) ?? 0) + 1);
  }

  // Shared state, with the stack whole again: written or counted through one router, read through the other.
  const routers = stack.routerUrls();
  const [a, b] = index % 2 === 0 ? [routers[0]!, routers[1]!] : [routers[1]!, routers[0]!];
  const shared = [
    await persistedQueryShared(a, b, { 'x-forwarded-for': `192.0.2.${index + 10}` }),
    await rateLimitShared(routers, `203.0.113.${index + 10}`),
    await entityCacheShared(a, b, context.cacheTarget, context.admin, (product, units) =>
      context.seed.stock.set(product, (context.seed.stock.get(product) ?? 0) + units),
    ),
  ];
  const balancerRetries = (await stack.balancerRetries()) - retriesBefore;

  const deaths = stack.deaths.splice(0, stack.deaths.length);
  const down = stack.replicas.filter((r) => !r.process.running).map((r) => r.name);
  const died = deaths.map((d) => `${d.service}(${d.signal ?? d.code})`);
  const problems = [...verdict.problems];
  const queryFailures = count(queries.failures);
  if (queryFailures > 0) problems.push(`${queryFailures} OrderDetails queries failed: ${describe(queries.failures)}`);
  const mutationFailures = count(load.failures, (key) => !EXPECTED_FAILURES.has(key)) + count(live.failures);
  if (mutationFailures > 0) problems.push(`${mutationFailures} mutations failed after the client's retries: ${describe(load.failures)}; followed orders: ${describe(live.failures)}`);
  const reconnects = live.orders.reduce((n, o) => n + Math.max(0, o.connections - 1), 0);
  if (phase.name === 'kill -9 router' && reconnects === 0) problems.push('no subscriber lost its router: the kill did not test reconnection');
  if (missedEvents.length > 0) problems.push(`${missedEvents.length} status changes never reached their subscriber (e.g. ${missedEvents.slice(0, 3).join('; ')})`);
  for (const c of shared) if (!c.ok) problems.push(`${c.name} not shared by the routers: ${c.detail}`);
  if (died.length > 0) problems.push(`died without being killed: ${died.join(', ')}`);
  if (down.length > 0) problems.push(`not running at the end of the phase: ${down.join(', ')}`);
  return {
    name: phase.name,
    observed,
    load,
    queries,
    live,
    balancerRetries,
    verdict,
    settleSeconds,
    followed: live.orders.length,
    expectedEvents,
    missedEvents,
    subscriptionErrors,
    shared,
    died,
    problems,
  };
}

function requests(r: PhaseResult): number {
  const orderOps = r.load.placed.size + r.load.cancelled.size + count(r.load.failures) + r.load.retries;
  return r.queries.requests + orderOps + r.live.requests + r.followed;
}

function report(results: readonly PhaseResult[]): string {
  const rows = results.map((r) => {
    const n = r.verdict.notifications;
    return [
      r.name,
      `${requests(r)}`,
      `${count(r.queries.failures) + count(r.load.failures, (k) => !EXPECTED_FAILURES.has(k)) + count(r.live.failures)}`,
      `${r.load.retries + r.live.retries}+${r.balancerRetries}`,
      `${r.verdict.lostOrders.length}/${r.verdict.pending.length}`,
      `${n.missing.length}/${n.doubled.length} of ${n.expected}`,
      `${r.missedEvents.length} of ${r.expectedEvents} (${r.followed} orders)`,
      r.shared.map((c) => `${c.name} ${c.ok ? 'ok' : 'FAIL'}`).join(', '),
      r.died.length === 0 ? '-' : r.died.join(' '),
      r.problems.length === 0 ? 'ok' : 'FAIL',
    ];
  });
  const main = table(
    ['phase', 'requests', 'failed', 'retried (client+haproxy)', 'orders lost/pending', 'notif lost/doubled', 'subscription events missed', 'shared state', 'died', 'result'],
    rows,
  );
  const details = results.map((r) =>
    [
      `${r.name}: ${r.observed}`,
      `  ${r.queries.requests} OrderDetails, ${r.load.placed.size} placed and ${r.load.cancelled.size} cancelled by the checkout load, ${r.followed} orders followed live; settled ${r.settleSeconds === undefined ? `never (>${SETTLE_MS / 1000}s)` : `after ${r.settleSeconds.toFixed(1)}s`}`,
      `  client-visible failures: queries ${describe(r.queries.failures)}; checkouts ${describe(r.load.failures)}; followed orders ${describe(r.live.failures)}`,
      `  subscriptions: ${r.live.orders.reduce((n, o) => n + Math.max(0, o.connections - 1), 0)} reconnects after a cut socket, ${r.live.orders.reduce((n, o) => n + o.resubscribed, 0)} resubscriptions after their router ended them; errors ${describe(r.subscriptionErrors)}`,
      ...r.shared.map((c) => `  ${c.name}: ${c.detail}`),
      ...r.problems.map((p) => `  FAIL ${p}`),
      '',
    ].join('\n'),
  );
  return `${main}\n\n${details.join('\n')}`;
}

async function run(): Promise<number> {
  const started = Date.now();
  const dir = mkdtempSync(path.join(tmpdir(), 'shop-scale-'));
  out(`scale-out test: logs in ${path.join(dir, 'logs')}`);
  const stack = await ScaleStack.start(dir, out);
  current = stack;
  let failed = true;
  try {
    out(`stack up after ${elapsed(started)}`);
    const shop = demoShop();
    const frontend = stack.frontendUrl('router');
    // Before the load, one at a time: each login is a scrypt hash, seconds of CPU on a busy machine.
    const users = shop.users.filter((u) => shop.orders.some((o) => o.userId === u.id)).slice(0, CUSTOMERS);
    const customers = (await loginCustomers(frontend, users)).map((c, i) => ({ ...c, headers: { 'x-forwarded-for': `10.0.0.${i + 1}` } }));
    const adminHeaders = { 'x-forwarded-for': '10.0.1.1' };
    const admin = { ...(await login(frontend, DEMO_ADMIN.email, DEMO_ADMIN.password, adminHeaders)), headers: adminHeaders };
    out(`${customers.length} customers and the administrator logged in after ${elapsed(started)}`);
    // One product only the entity cache check changes, in a demo order the administrator reads.
    const cacheOrder = shop.orders.find((o) => o.lines.length > 0)!;
    const cacheTarget = { orderId: cacheOrder.id, productId: cacheOrder.lines[0]!.productId };
    const products = shop.products.filter((p) => p.id !== cacheTarget.productId);
    const baseline = await readSnapshot(stack.databaseUrls);
    const seed = { orders: new Set(baseline.orders.keys()), users: baseline.userIds, stock: new Map(baseline.stock) };
    const context: Context = {
      stack,
      orderLoad: new OrderLoad({
        url: frontend,
        customers,
        products,
        ordersPerSecond: ORDERS_PER_SECOND,
        cancelShare: 0.3,
        signUpsPerSecond: 0,
        idempotencyKeys: true,
        requestTimeoutMs: CLIENT_TIMEOUT_MS,
      }),
      queryLoad: new QueryLoad(
        frontend,
        customers.map((customer) => ({ customer, orderIds: shop.orders.filter((o) => o.userId === customer.id).map((o) => o.id) })),
        QUERIES_PER_SECOND,
      ),
      liveOrders: new LiveOrders({ url: frontend, customers, admin, products, perSecond: FOLLOWED_PER_SECOND }),
      seed,
      admin,
      cacheTarget,
    };
    const results: PhaseResult[] = [];
    for (const [index, phase] of PHASES.entries()) {
      out(`\n[${elapsed(started)}] phase: ${phase.name}`);
      const result = await runPhase(context, phase, index);
      results.push(result);
      for (const problem of result.problems) out(`  FAIL ${problem}`);
    }
    // Every order of the test once more: what a phase broke and nothing repaired since shows here.
    const all = {
      placed: new Set(results.flatMap((r) => [...r.load.placed, ...r.live.orders.map((o) => o.id)])),
      cancelled: new Set(results.flatMap((r) => [...r.load.cancelled])),
      usersCreated: new Set<string>(),
    };
    const final = check(await readSnapshot(stack.databaseUrls), seed, seed, all);
    out(`\n${PHASES.length} phases; run took ${elapsed(started)}\n`);
    out(report(results));
    out(`all phases, at the end: ${final.orders} orders of the test, ${final.notifications.recorded} notifications; ${final.problems.length === 0 ? 'consistent' : final.problems.join('; ')}`);
    failed = results.some((r) => r.problems.length > 0) || final.problems.length > 0;
  } catch (error) {
    out(`\nthe run stopped: ${error instanceof Error ? (error.stack ?? error.message) : (JSON.stringify(error) ?? String(error))}`);
  } finally {
    if (failed) {
      out('\nwarnings and errors logged by each process (most frequent first):');
      for (const replica of stack.replicas) out(`${replica.name}:\n${logSummary(path.join(dir, 'logs', `${replica.name}.log`))}`);
    }
    await stack.stop();
    if (failed || KEEP_LOGS) out(`\nlogs kept in ${path.join(dir, 'logs')}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  out(failed ? '\nscale-out test FAILED' : '\nscale-out test passed');
  return failed ? 1 : 0;
}

/** The running stack, for stopping its processes when the run is cut short. */
let current: ScaleStack | undefined;

function abort(reason: string, code: number): void {
  out(`\n${reason}: stopping every process`);
  void Promise.race([current?.stop(), sleep(20_000)]).finally(() => process.exit(code));
}

const watchdog = setTimeout(() => abort(`scale-out test did not finish within ${RUN_LIMIT_MS / 60_000} minutes`, 2), RUN_LIMIT_MS);
watchdog.unref();
process.once('SIGINT', () => abort('interrupted', 130));
process.once('SIGTERM', () => abort('terminated', 143));
// A crash of the harness itself must not leave a dozen services running without it.
process.once('unhandledRejection', (reason) => abort(`unhandled rejection: ${reason instanceof Error ? reason.message : String(reason)}`, 1));

run().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`scale-out test could not run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
