import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { demoShop } from '@shop/common';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { benchCpuMs, cpuMsOfCommandSince, cpuTimeMs, machineBusyMs, rssBytes } from '../lib/processes.js';
import { round, summarize } from '../lib/load.js';
import { FOLLOW_ORDER } from '../lib/operations.js';
import type { BenchContext, ScenarioResult } from '../lib/context.js';
import { postGraphQL, subgraphPids } from './gateway.js';

const UPDATE = 'mutation($id: ID!, $s: OrderStatus!) { updateOrderStatus(id: $id, status: $s) { id status } }';
const CANCEL = 'mutation($id: ID!) { cancelOrder(id: $id, reason: "bench") { id status } }';

/** One status change the life cycle allows from the seeded status. */
interface Step {
  orderId: string;
  index: number;
  status: 'SHIPPED' | 'DELIVERED' | 'CANCELLED';
  /** A step that needs the order's previous step done first. */
  after?: Step;
  done?: Promise<unknown>;
  /** Set once the router answered the change. */
  answered?: boolean;
}

/** Every change the seeded orders still allow: CONFIRMED twice (shipped, delivered), SHIPPED once, PENDING cancelled. */
function plannedSteps(): Step[] {
  const first: Step[] = [];
  const second: Step[] = [];
  demoShop().orders.forEach((order, index) => {
    if (order.status === 'CONFIRMED') {
      const shipped: Step = { orderId: order.id, index, status: 'SHIPPED' };
      first.push(shipped);
      second.push({ orderId: order.id, index, status: 'DELIVERED', after: shipped });
    } else if (order.status === 'SHIPPED') first.push({ orderId: order.id, index, status: 'DELIVERED' });
    else if (order.status === 'PENDING') first.push({ orderId: order.id, index, status: 'CANCELLED' });
  });
  // Second steps after all first ones, so an order's two changes are far apart.
  return [...first, ...second];
}

interface Level {
  subscriptions: number;
  opened: number;
  openSeconds: number;
  routerRssMiB: number;
  bytesPerSubscription: number;
  changes: number;
  changesPerSecond: number;
  deliveriesExpected: number;
  deliveries: number;
  deliveryMs: ReturnType<typeof summarize>;
  mutationMs: ReturnType<typeof summarize>;
  /** CPU time per status change of each process, over the change phase and the deliveries. */
  cpuMsPerChange: Record<string, number>;
  /** The same for what the services share the machine with (PostgreSQL backends, Redis, the bench) and the whole machine. */
  sharedCpuMsPerChange: Record<string, number>;
  /**
   * How late the bench's own event loop ran while changes were sent and delivered: the clients time each delivery
   * when their callback runs, so a pause here (the bench's own GC) shows up as delivery time.
   */
  benchLoopDelayMs: { p99: number; max: number };
}

/**
 * 5. Open graphql-ws subscriptions (one socket each, spread over the seeded
 * orders) on one router, then change statuses at a fixed rate through the router
 * and time each change from its request to its arrival at every client that
 * follows the order, with fields of users, products and inventory in the payload.
 */
export async function subscriptionsScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const { settings, routerUrl, router, authHeaders } = ctx;
  const wsUrl = routerUrl.replace(/^http/, 'ws');
  const orderIds = ctx.orderIds;
  const clients: Client[] = [];
  const disposers: (() => void)[] = [];
  /** Order id -> number of clients following it. */
  const followers = new Map<string, number>();
  /** `${orderId}:${status}` -> when the change was requested. */
  const sentAt = new Map<string, number>();
  let latencies: number[] = [];
  let deliveries = 0;
  const steps = plannedSteps();
  const levels: Level[] = [];
  const rssBefore = rssBytes(router.pid);

  /** Sends `list` at the set rate, each change one request through the router; resolves once all are answered. */
  const sendAtRate = async (list: Step[]): Promise<{ mutationMs: number[]; changeSeconds: number }> => {
    const mutationMs: number[] = [];
    const interval = 1000 / settings.statusChangesPerSecond;
    const start = performance.now();
    const inFlight: Promise<unknown>[] = [];
    for (let k = 0; k < list.length; k++) {
      const step = list[k]!;
      const wait = start + k * interval - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const sent = performance.now();
      sentAt.set(`${step.orderId}:${step.status}`, sent);
      const body =
        step.status === 'CANCELLED'
          ? { query: CANCEL, variables: { id: step.orderId } }
          : { query: UPDATE, variables: { id: step.orderId, s: step.status } };
      step.done = postGraphQL(routerUrl, body, authHeaders).then(() => {
        step.answered = true;
        mutationMs.push(performance.now() - sent);
      });
      inFlight.push(step.done);
    }
    const changeSeconds = (performance.now() - start) / 1000;
    await Promise.all(inFlight);
    return { mutationMs, changeSeconds };
  };

  const subscribe = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const orderId = orderIds[i % orderIds.length]!;
      const client = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: true,
        connectionParams: authHeaders.authorization ? { authorization: authHeaders.authorization } : {},
      });
      clients.push(client);
      let first = true;
      disposers.push(
        client.subscribe<{ orderStatusChanged: { status: string } }>(
          { query: FOLLOW_ORDER, variables: { id: orderId } },
          {
            next: (event) => {
              if (first) {
                first = false;
                if (event.errors) reject(new Error(JSON.stringify(event.errors)));
                else resolve();
                return;
              }
              const t0 = sentAt.get(`${orderId}:${event.data?.orderStatusChanged.status}`);
              if (t0 !== undefined) {
                latencies.push(performance.now() - t0);
                deliveries++;
              }
            },
            error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
            complete: () => undefined,
          },
        ),
      );
      followers.set(orderId, (followers.get(orderId) ?? 0) + 1);
    });

  let warmupChanges = 0;
  try {
    let open = 0;
    for (const target of settings.subscriptionCounts) {
      const t0 = performance.now();
      // A few hundred handshakes at a time, each waiting for its first event (the order as it is).
      const batch = 200;
      for (let i = open; i < target; i += batch) {
        await Promise.all(Array.from({ length: Math.min(batch, target - i) }, (_, k) => subscribe(i + k)));
      }
      const openSeconds = (performance.now() - t0) / 1000;
      open = target;
      await new Promise((r) => setTimeout(r, 2_000));
      const rss = rssBytes(router.pid);

      if (levels.length === 0) {
        // Warm-up: half a second of changes at the set rate on orders nobody follows, so the measured ones do not
        // pay for compiling the change path or growing connection pools (the other scenarios warm up as well).
        const warmup: Step[] = [];
        for (let s = 0; s < steps.length && warmup.length < settings.statusChangesPerSecond / 2; ) {
          const step = steps[s]!;
          if (!followers.has(step.orderId) && !step.after) {
            warmup.push(step);
            steps.splice(s, 1);
          } else s++;
        }
        await sendAtRate(warmup);
        warmupChanges = warmup.length;
        await new Promise((r) => setTimeout(r, 1_000));
      }
      // Changes of followed orders, at the set rate, each one request through the router.
      const want = settings.statusChangesPerSecond * settings.statusChangeSeconds;
      const chosen: Step[] = [];
      for (let s = 0; s < steps.length && chosen.length < want; ) {
        const step = steps[s]!;
        // A second change of an order only once the first was answered, so the sending never waits on one.
        if (followers.has(step.orderId) && (!step.after || step.after.answered)) {
          chosen.push(step);
          steps.splice(s, 1);
        } else s++;
      }
      latencies = [];
      deliveries = 0;
      const processes = { router: router.pid, ...subgraphPids(ctx) };
      const cpuBefore = Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, cpuTimeMs(pid)]));
      const shared = {
        postgres: cpuMsOfCommandSince('postgres'),
        redis: cpuMsOfCommandSince('redis-server'),
        // This process: the clients receiving the events and the sending of the changes.
        bench: benchCpuMs,
        machine: machineBusyMs,
      };
      const sharedBefore = Object.fromEntries(Object.entries(shared).map(([name, read]) => [name, read()]));
      const loopDelay = monitorEventLoopDelay({ resolution: 10 });
      loopDelay.enable();
      const { mutationMs, changeSeconds } = await sendAtRate(chosen);
      const expected = chosen.reduce((sum, step) => sum + followers.get(step.orderId)!, 0);
      const deadline = performance.now() + 10_000;
      while (deliveries < expected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      loopDelay.disable();
      const cpuMsPerChange = Object.fromEntries(
        Object.entries(processes).map(([name, pid]) => [name, round((cpuTimeMs(pid) - cpuBefore[name]!) / Math.max(chosen.length, 1), 2)]),
      );
      const sharedCpuMsPerChange = Object.fromEntries(
        Object.entries(shared).map(([name, read]) => [name, round((read() - sharedBefore[name]!) / Math.max(chosen.length, 1), 2)]),
      );
      levels.push({
        subscriptions: target,
        opened: target,
        openSeconds: round(openSeconds, 1),
        routerRssMiB: round(rss / 2 ** 20),
        bytesPerSubscription: Math.round((rss - rssBefore) / target),
        changes: chosen.length,
        changesPerSecond: round(chosen.length / changeSeconds),
        deliveriesExpected: expected,
        deliveries,
        deliveryMs: summarize(latencies),
        mutationMs: summarize(mutationMs),
        cpuMsPerChange,
        sharedCpuMsPerChange,
        benchLoopDelayMs: { p99: round(loopDelay.percentile(99) / 1e6, 1), max: round(loopDelay.max / 1e6, 1) },
      });
    }
  } finally {
    for (const dispose of disposers) dispose();
    await Promise.all(clients.map((c) => c.dispose()));
  }
  const top = levels[levels.length - 1]!;
  return {
    scenario: 'subscriptions',
    title: 'Subscriptions on one router: memory and delivery time',
    routerRssBeforeMiB: round(rssBefore / 2 ** 20),
    warmupChanges,
    levels,
    targets: [
      {
        goal: `${top.subscriptions.toLocaleString('en')} subscriptions on one router in <= 1 GiB`,
        measured: `${top.routerRssMiB} MiB RSS (${Math.round(top.bytesPerSubscription / 1024)} KiB per subscription)`,
        met: top.routerRssMiB <= 1024,
      },
      ...levels.map((l) => ({
        goal: `p99 delivery < 100 ms at ${settings.statusChangesPerSecond} changes/s, ${l.subscriptions.toLocaleString('en')} open`,
        measured: `p50 ${l.deliveryMs.p50} ms, p99 ${l.deliveryMs.p99} ms (${l.deliveries}/${l.deliveriesExpected} delivered, ${l.changesPerSecond} changes/s)`,
        met: l.deliveryMs.p99 < 100 && l.deliveries === l.deliveriesExpected && l.changesPerSecond >= settings.statusChangesPerSecond * 0.95,
      })),
    ],
  };
}
