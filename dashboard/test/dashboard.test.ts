import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEMO_ADMIN,
  DEMO_CUSTOMER_PASSWORD,
  DEV_JWT_SECRET,
  TokenIssuer,
  createLogger,
  createRedis,
  demoShop,
  readJwtIssuerConfig,
  readJwtVerifierConfig,
} from '@shop/common';
import { createTestRedis, startTestSubgraph, type TestRedis, type TestSubgraph } from '@shop/common/testing';
import { users } from '@shop/users';
import { readDashboardConfig } from '../src/config.js';
import { SESSION_COOKIE } from '../src/auth.js';
import { createDashboard, type Dashboard } from '../src/server.js';

const log = createLogger('dashboard-test', 'silent');
const customer = demoShop().users[3]!;
// Tokens as the users subgraph signs them in development, verified as the router verifies them.
const jwt = readJwtVerifierConfig({}, false);

let redis: TestRedis;
let connection: Redis;
let usersSubgraph: TestSubgraph;
let issuer: TokenIssuer;
const started: { server: Server; dashboard: Dashboard }[] = [];

/** A dashboard on an ephemeral loopback port; its login form calls `routerUrl`. */
async function startDashboard(options: { secureCookie?: boolean; redis?: Redis; routerUrl?: string } = {}): Promise<string> {
  const dashboard = createDashboard(options.redis ?? connection, {
    prefix: redis.prefix,
    jwt,
    routerUrl: options.routerUrl ?? usersSubgraph.url,
    secureCookie: options.secureCookie ?? false,
    log,
  });
  const server = createServer(dashboard.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  started.push({ server, dashboard });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let base: string;
let adminToken: string;
let customerToken: string;

beforeAll(async () => {
  redis = await createTestRedis('dashboard');
  connection = createRedis(redis.url, log);
  // The users subgraph serves the same `login` mutation the router forwards to it: the form's real counterpart.
  usersSubgraph = await startTestSubgraph(users, { seed: true, env: { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix, NOTIFICATION_WORKER_IN_PROCESS: 'false' } });
  issuer = await TokenIssuer.create(readJwtIssuerConfig({}, false));
  adminToken = (await issuer.issue(DEMO_ADMIN.id, 'ADMIN')).token;
  customerToken = (await issuer.issue(customer.id, 'CUSTOMER')).token;
  base = await startDashboard();
});
afterAll(async () => {
  for (const { server, dashboard } of started) {
    server.close();
    await dashboard.close();
  }
  connection?.disconnect();
  await usersSubgraph?.close();
  await redis?.cleanup();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A waiting job in the notifications queue, to see whether a request reached the queue. */
async function withWaitingJob<T>(fn: (count: () => Promise<number>) => Promise<T>): Promise<T> {
  const queue = new Queue('notifications', { connection, prefix: redis.prefix });
  try {
    await queue.add('welcome', { userId: 'x' }, { jobId: `welcome-${crypto.randomUUID()}` });
    return await fn(() => queue.getWaitingCount());
  } finally {
    await queue.drain();
    await queue.close();
  }
}

describe('probes and metrics', () => {
  it('answers /health and /ready without logging in; /ready is 503 while Redis is unreachable', async () => {
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { redis: 'ok' } });

    const nowhere = createRedis('redis://127.0.0.1:1', log);
    try {
      const cut = await startDashboard({ redis: nowhere });
      expect((await fetch(`${cut}/health`)).status).toBe(200);
      const notReady = await fetch(`${cut}/ready`);
      expect(notReady.status).toBe(503);
      expect(((await notReady.json()) as { status: string }).status).toBe('unavailable');
    } finally {
      nowhere.disconnect();
    }
  });

  it('reports the job counts of the shop queues at /metrics', async () => {
    await withWaitingJob(async () => {
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toContain('queue_jobs{queue="notifications",state="waiting"} 1');
      expect(metrics).toContain('queue_jobs{queue="inventory-reservations",state="failed"} 0');
    });
  });
});

describe('Bull Board for administrators only', () => {
  it('refuses an anonymous request with 401 before it reaches a queue', async () => {
    const page = await fetch(`${base}/queues`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(401);
    expect(await page.text()).toContain('href="/login"');
    const api = await fetch(`${base}/queues/api/queues`);
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toContain('Bearer');
    await withWaitingJob(async (waiting) => {
      const empty = await fetch(`${base}/queues/api/queues/notifications/empty`, { method: 'PUT' });
      expect(empty.status).toBe(401);
      expect(await waiting()).toBe(1);
    });
  });

  it.each([
    ['a forged token', async () => new SignJWT({ role: 'ADMIN' }).setProtectedHeader({ alg: 'HS256' }).setSubject(DEMO_ADMIN.id).setIssuer('shop-users').setAudience('shop').setExpirationTime('1h').sign(new TextEncoder().encode('x'.repeat(40)))],
    ['an expired token', async () => new SignJWT({ role: 'ADMIN' }).setProtectedHeader({ alg: 'HS256' }).setSubject(DEMO_ADMIN.id).setIssuer('shop-users').setAudience('shop').setExpirationTime(Math.floor(Date.now() / 1000) - 10).sign(new TextEncoder().encode(DEV_JWT_SECRET))],
    ['not a JWT', async () => 'not-a-jwt'],
  ])('refuses %s with 401, as a bearer token or the cookie', async (_label, make) => {
    const token = await make();
    expect((await fetch(`${base}/queues/api/queues`, { headers: bearer(token) })).status).toBe(401);
    expect((await fetch(`${base}/queues/api/queues`, { headers: { cookie: `${SESSION_COOKIE}=${token}` } })).status).toBe(401);
  });

  it("refuses a customer's token with 403", async () => {
    await withWaitingJob(async (waiting) => {
      expect((await fetch(`${base}/queues/api/queues`, { headers: bearer(customerToken) })).status).toBe(403);
      const empty = await fetch(`${base}/queues/api/queues/notifications/empty`, { method: 'PUT', headers: bearer(customerToken) });
      expect(empty.status).toBe(403);
      expect(await waiting()).toBe(1);
    });
  });

  it("serves an administrator's bearer token: the page, the queues and their actions", async () => {
    const page = await fetch(`${base}/queues`, { headers: bearer(adminToken) });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
    await withWaitingJob(async (waiting) => {
      const res = await fetch(`${base}/queues/api/queues`, { headers: bearer(adminToken) });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { queues: { name: string; counts: Record<string, number> }[] };
      expect(body.queues.map((q) => q.name).sort()).toEqual(['inventory-reservations', 'notifications', 'order-reservation-results']);
      expect(body.queues.find((q) => q.name === 'notifications')?.counts.waiting).toBe(1);
      // No Origin needed: a browser never attaches a bearer token by itself.
      const empty = await fetch(`${base}/queues/api/queues/notifications/empty`, { method: 'PUT', headers: bearer(adminToken) });
      expect(empty.status).toBe(200);
      expect(await waiting()).toBe(0);
    });
  });
});

describe('login form and session cookie', () => {
  const post = (url: string, fields: Record<string, string>, headers: Record<string, string> = { origin: new URL(url).origin }) =>
    fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(fields).toString(),
    });

  it('serves the form without logging in', async () => {
    const form = await fetch(`${base}/login`);
    expect(form.status).toBe(200);
    expect(form.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await form.text();
    expect(html).toContain('<form method="post" action="/login">');
    expect(html).toContain('type="password"');
  });

  it('refuses a wrong password (401), a customer (403) and a cross-site post (403), and sets no cookie', async () => {
    const wrong = await post(`${base}/login`, { email: DEMO_ADMIN.email, password: 'not-the-password' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('Email or password is incorrect.');
    expect(wrong.headers.get('set-cookie')).toBeNull();

    const shopper = await post(`${base}/login`, { email: customer.email, password: DEMO_CUSTOMER_PASSWORD });
    expect(shopper.status).toBe(403);
    expect(await shopper.text()).toContain('Only an administrator');
    expect(shopper.headers.get('set-cookie')).toBeNull();

    const crossSite = await post(`${base}/login`, { email: DEMO_ADMIN.email, password: DEMO_ADMIN.password }, { origin: 'https://evil.example' });
    expect(crossSite.status).toBe(403);
    expect(crossSite.headers.get('set-cookie')).toBeNull();
    const noOrigin = await post(`${base}/login`, { email: DEMO_ADMIN.email, password: DEMO_ADMIN.password }, {});
    expect(noOrigin.status).toBe(403);
  });

  it("keeps an administrator's token in an HttpOnly, SameSite=Strict cookie; state changes need the dashboard's origin", async () => {
    const login = await post(`${base}/login`, { email: DEMO_ADMIN.email, password: DEMO_ADMIN.password });
    expect(login.status).toBe(303);
    expect(login.headers.get('location')).toBe('/queues');
    const setCookie = login.headers.get('set-cookie')!;
    expect(setCookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[\\w-]+\\.[\\w-]+\\.[\\w-]+; Path=/; HttpOnly; SameSite=Strict; Max-Age=\\d+$`));
    const maxAge = Number(/Max-Age=(\d+)/.exec(setCookie)![1]);
    expect(maxAge).toBeGreaterThan(3500);
    expect(maxAge).toBeLessThanOrEqual(3600);
    const cookie = setCookie.split(';')[0]!;

    expect((await fetch(`${base}/queues`, { headers: { cookie } })).status).toBe(200);
    await withWaitingJob(async (waiting) => {
      const url = `${base}/queues/api/queues/notifications/empty`;
      expect((await fetch(url, { method: 'PUT', headers: { cookie } })).status).toBe(403);
      expect((await fetch(url, { method: 'PUT', headers: { cookie, origin: 'https://evil.example' } })).status).toBe(403);
      expect(await waiting()).toBe(1);
      expect((await fetch(url, { method: 'PUT', headers: { cookie, origin: base } })).status).toBe(200);
      expect(await waiting()).toBe(0);
    });

    const logout = await post(`${base}/logout`, {}, { origin: base, cookie });
    expect(logout.status).toBe(303);
    expect(logout.headers.get('set-cookie')).toBe(`${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
  });

  it('marks the cookie Secure in production', async () => {
    const secure = await startDashboard({ secureCookie: true });
    const login = await post(`${secure}/login`, { email: DEMO_ADMIN.email, password: DEMO_ADMIN.password });
    expect(login.status).toBe(303);
    expect(login.headers.get('set-cookie')).toMatch(/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
  });

  it('says so when the router does not answer', async () => {
    const unreachable = await startDashboard({ routerUrl: 'http://127.0.0.1:1/graphql' });
    const login = await post(`${unreachable}/login`, { email: DEMO_ADMIN.email, password: DEMO_ADMIN.password });
    expect(login.status).toBe(502);
    expect(await login.text()).toContain("router did not answer");
  });
});

describe('dashboard settings', () => {
  const SECRET = 'y'.repeat(40);
  it('default to loopback, port 4005 and the local router, with the development key outside production', () => {
    expect(readDashboardConfig({})).toMatchObject({
      host: '127.0.0.1',
      port: 4005,
      routerUrl: 'http://127.0.0.1:4000/graphql',
      secureCookie: false,
      jwt: { secret: DEV_JWT_SECRET, issuer: 'shop-users', audience: 'shop' },
    });
    expect(readDashboardConfig({ ROUTER_URL: 'http://router:4000/graphql' }).routerUrl).toBe('http://router:4000/graphql');
    // As the web app's server takes it.
    expect(readDashboardConfig({ ROUTER_URL: 'http://router:4000' }).routerUrl).toBe('http://router:4000/graphql');
    expect(() => readDashboardConfig({ ROUTER_URL: 'router:4000' })).toThrow(/ROUTER_URL must use http: or https:/);
  });

  it('refuse to start in production without a way to verify tokens, or with a public key', () => {
    expect(() => readDashboardConfig({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET or JWT_JWKS_URL is required in production/);
    expect(() => readDashboardConfig({ NODE_ENV: 'production', JWT_SECRET: DEV_JWT_SECRET })).toThrow(/JWT_SECRET is a public development default/);
    expect(readDashboardConfig({ NODE_ENV: 'production', JWT_SECRET: SECRET })).toMatchObject({ secureCookie: true, jwt: { secret: SECRET } });
    expect(readDashboardConfig({ NODE_ENV: 'production', JWT_JWKS_URL: 'http://users:4001/.well-known/jwks.json' }).jwt.jwksUrl).toBe(
      'http://users:4001/.well-known/jwks.json',
    );
  });
});
