/**
 * Fault test (`npm run test:faults`): the whole shop as production processes on a PostgreSQL cluster and a
 * redis-server of its own, a steady load of checkouts through the router, and one fault at a time (kill -9 of a
 * process, Redis restarted empty, PostgreSQL connections cut or the server restarted). After each fault the load
 * stops and the databases are read until they agree with what the clients were told, or the settle time runs out:
 * no order answered OK is lost or left PENDING, stock is held exactly by the orders whose status holds it, every
 * notifying event has exactly one notification, and no process died but the one killed. Exits non-zero when a check
 * fails. Sends traffic only to 127.0.0.1; never touches the machine's shared PostgreSQL or Redis.
 *
 * Settings: FAULTS_ONLY (comma-separated parts of fault names to run, e.g. `redis,orders`), FAULTS_RATE (placeOrder
 * per second, 20), FAULTS_SETTLE_MS (longest wait for the checks after a fault, 90000), FAULTS_KEEP_LOGS=true (keep
 * the log directory even when everything passed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { demoShop, readBool, readInt, readOptional } from '@shop/common';
import { check, readSnapshot, settle, type Known } from './consistency.js';
import { loginCustomers } from './customers.js';
import { FaultStack } from './fault-stack.js';
import { FAULTS, type Fault } from './faults.js';
import { OrderLoad } from './order-load.js';
import { logSummary, resultsTable, type PhaseResult } from './report.js';
import { sleep } from './service-process.js';

const out = (line: string) => process.stdout.write(`${line}\n`);
const elapsed = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

const ORDERS_PER_SECOND = readInt(process.env, 'FAULTS_RATE', 20, 1, 200);
const SETTLE_MS = readInt(process.env, 'FAULTS_SETTLE_MS', 90_000, 1_000);
const KEEP_LOGS = readBool(process.env, 'FAULTS_KEEP_LOGS', false);
const ONLY = readOptional(process.env, 'FAULTS_ONLY')?.toLowerCase().split(',').map((s) => s.trim()).filter(Boolean);
/** Load before the fault, and after it (the stack whole again), in each phase. */
const BEFORE_MS = 4_000;
const AFTER_MS = 6_000;
const CUSTOMERS = 20;
const FINAL_QUIET_MS = 10_000;
/** The whole run's bound: it stops by itself, whatever hangs. */
const RUN_LIMIT_MS = 15 * 60_000;

async function runPhase(
  stack: FaultStack,
  load: OrderLoad,
  fault: Fault,
  seed: Known & { stock: ReadonlyMap<string, number> },
): Promise<PhaseResult> {
  const phaseStart = Date.now();
  const before = await readSnapshot(stack.databaseUrls);
  const known: Known = { orders: new Set(before.orders.keys()), users: before.userIds };
  for (const service of stack.services.values()) service.note(`phase "${fault.name}" begins`);
  load.start();
  await sleep(BEFORE_MS);
  out(`  ${elapsed(phaseStart)} injecting: ${fault.name}`);
  for (const service of stack.services.values()) service.note(`fault "${fault.name}" injected`);
  const observed = await fault.run(stack);
  out(`  ${elapsed(phaseStart)} fault over, stack whole again: ${observed}`);
  await sleep(AFTER_MS);
  const tally = await load.stop();
  out(`  ${elapsed(phaseStart)} load stopped: ${tally.placed.size} orders placed OK; settling`);
  const { verdict, seconds } = await settle(stack.databaseUrls, seed, known, tally, SETTLE_MS);
  out(`  ${elapsed(phaseStart)} ${seconds === undefined ? `still inconsistent after ${SETTLE_MS / 1000}s` : `consistent after ${seconds.toFixed(1)}s`}`);
  // A process that died is restarted by its supervisor: give it the time to come back before the next fault.
  const deadline = Date.now() + 30_000;
  while ([...stack.services.values()].some((s) => !s.running) && Date.now() < deadline) await sleep(500);
  const down = [...stack.services.values()].filter((s) => !s.running).map((s) => s.name);
  const deaths = stack.deaths.filter((d) => d.at >= phaseStart);
  stack.deaths.splice(0, stack.deaths.length);
  const problems = [...verdict.problems];
  for (const death of deaths) problems.push(`${death.service} died (${death.signal ?? `exit code ${death.code}`}) without being killed`);
  if (down.length > 0) problems.push(`not running at the end of the phase: ${down.join(', ')}`);
  return { fault: fault.name, observed, tally, verdict, deaths, down, settleSeconds: seconds, settleLimitSeconds: SETTLE_MS / 1000, problems };
}

async function run(): Promise<number> {
  const started = Date.now();
  const dir = mkdtempSync(path.join(tmpdir(), 'shop-faults-'));
  out(`fault test: logs in ${path.join(dir, 'logs')}`);
  const stack = await FaultStack.start(dir, out);
  current = stack;
  let failed = true;
  try {
    out(`services up after ${elapsed(started)}; idempotency keys in the supergraph: ${stack.idempotencyKeys}`);
    const customers = await loginCustomers(stack.routerUrl, demoShop().users.slice(0, CUSTOMERS));
    const baseline = await readSnapshot(stack.databaseUrls);
    const seed = { orders: new Set(baseline.orders.keys()), users: baseline.userIds, stock: baseline.stock };
    const load = new OrderLoad({
      url: stack.routerUrl,
      customers,
      products: demoShop().products,
      ordersPerSecond: ORDERS_PER_SECOND,
      cancelShare: 0.3,
      signUpsPerSecond: 0.5,
      idempotencyKeys: stack.idempotencyKeys,
    });
    const faults = FAULTS.filter((fault) => !ONLY || ONLY.some((part) => fault.name.toLowerCase().includes(part)));
    const results: PhaseResult[] = [];
    for (const fault of faults) {
      out(`\n[${elapsed(started)}] fault: ${fault.name}`);
      const result = await runPhase(stack, load, fault, seed);
      results.push(result);
      for (const problem of result.problems) out(`  FAIL ${problem}`);
    }
    // Every order of the test once more, after a quiet spell: what an earlier fault broke and nothing repaired
    // since, or a late duplicate of the last phase, shows here.
    await sleep(FINAL_QUIET_MS);
    const all = results.reduce(
      (sum, r) => {
        for (const id of r.tally.placed) sum.placed.add(id);
        for (const id of r.tally.cancelled) sum.cancelled.add(id);
        for (const id of r.tally.usersCreated) sum.usersCreated.add(id);
        for (const [key, n] of r.tally.failures) sum.failures.set(key, (sum.failures.get(key) ?? 0) + n);
        sum.retries += r.tally.retries;
        return sum;
      },
      { placed: new Set<string>(), cancelled: new Set<string>(), usersCreated: new Set<string>(), failures: new Map<string, number>(), retries: 0 },
    );
    const final = check(await readSnapshot(stack.databaseUrls), seed, seed, all);
    results.push({
      fault: 'all phases, at the end',
      observed: `${FINAL_QUIET_MS / 1000}s after the last phase settled`,
      tally: all,
      verdict: final,
      deaths: [],
      down: [],
      settleSeconds: 0,
      settleLimitSeconds: 0,
      problems: final.problems,
    });
    out(`\nidempotency keys sent: ${load.usesIdempotencyKeys}; ${ORDERS_PER_SECOND} placeOrder/s; run took ${elapsed(started)}\n`);
    out(resultsTable(results));
    failed = results.some((r) => r.problems.length > 0);
  } catch (error) {
    // A fault the stack did not come back from (a process that would not start, a server that would not restart).
    out(`\nthe run stopped: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    if (failed) {
      out('\nwarnings and errors logged by each service (most frequent first):');
      for (const service of stack.services.values()) out(`${service.name}:\n${logSummary(path.join(dir, 'logs', `${service.name}.log`))}`);
      out('\nlast lines of each log:');
      for (const service of stack.services.values()) out(`--- ${service.name}\n${service.tail(15)}`);
    }
    await stack.stop();
    if (failed || KEEP_LOGS) out(`\nlogs kept in ${path.join(dir, 'logs')}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  out(failed ? '\nfault test FAILED' : '\nfault test passed');
  return failed ? 1 : 0;
}

/** The running stack, for stopping its processes when the run is cut short. */
let current: FaultStack | undefined;

function abort(reason: string, code: number): void {
  out(`\n${reason}: stopping every process`);
  // Bounded: a stop that hangs must not keep the run alive.
  void Promise.race([current?.stop(), sleep(20_000)]).finally(() => process.exit(code));
}

const watchdog = setTimeout(() => abort(`fault test did not finish within ${RUN_LIMIT_MS / 60_000} minutes`, 2), RUN_LIMIT_MS);
watchdog.unref();
process.once('SIGINT', () => abort('interrupted', 130));
process.once('SIGTERM', () => abort('terminated', 143));

run().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`fault test could not run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
