import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'graphql';
import { composeServices } from '@apollo/composition';
import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ADMIN, createLogger, demoShop, listen, loadSchema, type Listening } from '@shop/common';
import { startTestSubgraph, type TestSubgraph } from '@shop/common/testing';
import { users } from '@shop/users';
import { readRouterConfig } from '../src/config.js';
import { createRouter, type Router } from '../src/server.js';
import { SUBSCRIPTION_SHARING } from '../src/shared-subscription.js';
import { TICKS_SCHEMA, tickState, ticksSubgraph } from './fixtures/ticks.js';
import { login } from './stack.js';

const shop = demoShop();
let dir: string;
let file: string;
let usersSubgraph: TestSubgraph;
let ticks: TestSubgraph;
let router: Router;
let http: Listening;
let metricsHttp: Listening;
let metricsUrl: string;
let client: Client;

function supergraph(ticksUrl: string): string {
  const result = composeServices([
    { name: 'users', url: usersSubgraph.url, typeDefs: parse(loadSchema(new URL('../../subgraphs/users/src/schema.graphql', import.meta.url))) },
    { name: 'ticks', url: ticksUrl, typeDefs: parse(TICKS_SCHEMA) },
  ]);
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.supergraphSdl;
}

type Event = FormattedExecutionResult<{ ticks: { n: number; user: { name: string; email: string } } }>;

/** Subscribes and collects events until the server completes the subscription. */
function collect(query: string, variables: Record<string, unknown>): { events: Event[]; done: Promise<void>; stop: () => void } {
  const events: Event[] = [];
  let stop: () => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    stop = client.subscribe<Event['data']>({ query, variables }, {
      next: (event) => events.push(event as Event),
      error: (error) => reject(error instanceof Error ? error : new Error(Array.isArray(error) ? JSON.stringify(error) : `closed ${(error as { code?: number }).code} ${(error as { reason?: string }).reason}`)),
      complete: resolve,
    });
  });
  return { events, done, stop };
}

const TICKS = 'subscription($u: ID!, $c: Int!) { ticks(userId: $u, count: $c) { n user { name email } } }';

beforeAll(async () => {
  usersSubgraph = await startTestSubgraph(users, { seed: true });
  ticks = await startTestSubgraph(ticksSubgraph);
  dir = await mkdtemp(path.join(tmpdir(), 'subscriptions-'));
  file = path.join(dir, 'supergraph.graphql');
  await writeFile(file, supergraph(ticks.url));
  router = await createRouter(readRouterConfig([], { SUPERGRAPH_PATH: file }), createLogger('router', 'silent'));
  http = await listen(router.listener, 0, '127.0.0.1');
  router.attachWebSockets(http.server);
  metricsHttp = await listen(router.metricsListener, 0, '127.0.0.1', '/metrics');
  metricsUrl = metricsHttp.url;
  // The events read users' emails, which only the user and administrators may.
  const token = await login(http.url, DEMO_ADMIN.email, DEMO_ADMIN.password);
  client = createClient({
    url: http.url.replace('http', 'ws'),
    webSocketImpl: WebSocket,
    lazy: true,
    retryAttempts: 0,
    connectionParams: { authorization: `Bearer ${token}` },
  });
});
afterAll(async () => {
  await client?.dispose();
  await router?.stop();
  await http?.close();
  await metricsHttp?.close();
  await ticks?.close();
  await usersSubgraph?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('federated subscriptions through the router', () => {
  it('delivers each event with fields resolved from another subgraph', async () => {
    const user = shop.users[2]!;
    const sub = collect(TICKS, { u: user.id, c: 3 });
    await sub.done;
    expect(sub.events).toEqual([1, 2, 3].map((n) => ({ data: { ticks: { n, user: { name: user.name, email: user.email } } } })));
  });

  it('refuses an invalid subscription with a validation error', async () => {
    const sub = collect('subscription { ticks(userId: "x", count: 1) { nope } }', {});
    await expect(sub.done).rejects.toThrow(/Cannot query field .*nope.*GRAPHQL_VALIDATION_FAILED/);
  });

  it('releases everything upstream when clients go away, over many open/close cycles', async () => {
    tickState.intervalMs = 50;
    for (let cycle = 0; cycle < 5; cycle++) {
      const subs = Array.from({ length: 40 }, (_, i) => collect(TICKS, { u: shop.users[i % 10]!.id, c: 1_000_000 }));
      await expect.poll(() => subs.every((s) => s.events.length > 0), { timeout: 10_000 }).toBe(true);
      expect(router.subscriptions.openCount).toBe(40);
      expect(tickState.open).toBe(40);
      for (const sub of subs) sub.stop();
      await expect.poll(() => router.subscriptions.openCount, { timeout: 10_000 }).toBe(0);
      await expect.poll(() => tickState.open, { timeout: 10_000 }).toBe(0);
    }
    tickState.intervalMs = 20;
  });

  it('shares one upstream among identical subscribers of a shared field, each getting every event from when it joined, in order', async () => {
    router.subscriptions.setSharing({ ticks: 'events' });
    tickState.intervalMs = 20;
    try {
      const user = shop.users[3]!;
      const ns = (sub: ReturnType<typeof collect>) => sub.events.map((e) => e.data!.ticks.n);
      const first = [collect(TICKS, { u: user.id, c: 1_000_000 }), collect(TICKS, { u: user.id, c: 1_000_000 })];
      await expect.poll(() => first.every((s) => s.events.length >= 3), { timeout: 10_000 }).toBe(true);
      const late = collect(TICKS, { u: user.id, c: 1_000_000 });
      const other = collect(TICKS, { u: shop.users[4]!.id, c: 1_000_000 });
      await expect.poll(() => late.events.length >= 3 && other.events.length >= 3, { timeout: 10_000 }).toBe(true);
      // Identical ones share one upstream subscription; other variables get their own.
      expect(tickState.open).toBe(2);
      expect(router.subscriptions.upstreamCount).toBe(2);
      expect(router.subscriptions.openCount).toBe(4);
      first[0]!.stop();
      await expect.poll(() => router.subscriptions.openCount, { timeout: 5_000 }).toBe(3);
      const seen = late.events.length;
      await expect.poll(() => late.events.length, { timeout: 5_000 }).toBeGreaterThan(seen + 3);
      expect(tickState.open).toBe(2);
      for (const sub of [first[1]!, late]) sub.stop();
      await expect.poll(() => tickState.open, { timeout: 5_000 }).toBe(1);
      other.stop();
      await expect.poll(() => tickState.open, { timeout: 5_000 }).toBe(0);
      expect(router.subscriptions.upstreamCount).toBe(0);

      // Each got a gapless run of the one upstream's events; the late one from where it joined, not from 1.
      const run = (list: number[]) => list.every((n, i) => i === 0 || n === list[i - 1]! + 1);
      for (const sub of [...first, late, other]) {
        expect(run(ns(sub))).toBe(true);
        for (const event of sub.events) expect(event.data!.ticks.user).toEqual({ name: expect.any(String), email: expect.any(String) });
      }
      expect(ns(first[0]!)[0]).toBe(1);
      expect(ns(first[1]!)[0]).toBe(1);
      expect(ns(late)[0]).toBeGreaterThan(3);
      expect(ns(first[1]!)).toEqual(expect.arrayContaining(ns(late)));
      expect(late.events[0]!.data!.ticks.user).toEqual({ name: user.name, email: user.email });
    } finally {
      router.subscriptions.setSharing(SUBSCRIPTION_SHARING);
    }
  });

  it('combines the entity fetches of events that arrive together, and each subscriber still gets its own user', async () => {
    tickState.intervalMs = 20;
    const metric = async (name: string) => {
      const text = await (await fetch(metricsUrl)).text();
      return [...text.matchAll(new RegExp(`^${name}\\{[^}]*subgraph="users"[^}]*\\} (\\d+)`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
    };
    const fetchesBefore = await metric('shop_router_subgraph_fetch_duration_seconds_count');
    const combinedBefore = await metric('shop_router_subscription_entity_fetches_combined_total');
    // Thirty subscriptions of one caller, each following another user: none is shared, all tick every 20 ms.
    const followed = Array.from({ length: 30 }, (_, i) => shop.users[i % shop.users.length]!);
    const subs = followed.map((user) => collect(TICKS, { u: user.id, c: 5 }));
    await Promise.all(subs.map((s) => s.done));
    subs.forEach((sub, i) => {
      const user = followed[i]!;
      expect(sub.events).toEqual([1, 2, 3, 4, 5].map((n) => ({ data: { ticks: { n, user: { name: user.name, email: user.email } } } })));
    });
    const fetches = (await metric('shop_router_subgraph_fetch_duration_seconds_count')) - fetchesBefore;
    const combined = (await metric('shop_router_subscription_entity_fetches_combined_total')) - combinedBefore;
    // 150 events; those that met a fetch of their lane in flight went out together.
    expect(combined).toBeGreaterThan(0);
    expect(fetches).toBeLessThan(150);
    // Each combined fetch carried at least two events' fetches.
    expect(fetches).toBeLessThanOrEqual(150 - combined / 2);
  });

  it('ends open subscriptions with a clear error when the supergraph changes', async () => {
    const sub = collect(TICKS, { u: shop.users[0]!.id, c: 1_000_000 });
    await expect.poll(() => sub.events.length, { timeout: 10_000 }).toBeGreaterThan(0);
    // Same subgraphs, another routing URL string: a new supergraph.
    await writeFile(file, supergraph(ticks.url.replace('127.0.0.1', 'localhost')));
    await sub.done;
    expect(sub.events.at(-1)?.errors?.[0]).toMatchObject({
      message: expect.stringContaining('subscribe again'),
      extensions: { code: 'SUBSCRIPTION_SCHEMA_RELOADED' },
    });
    await expect.poll(() => tickState.open, { timeout: 10_000 }).toBe(0);
    // New subscriptions work on the new schema.
    const again = collect(TICKS, { u: shop.users[1]!.id, c: 1 });
    await again.done;
    expect(again.events).toEqual([{ data: { ticks: { n: 1, user: { name: shop.users[1]!.name, email: shop.users[1]!.email } } } }]);
  });
});
