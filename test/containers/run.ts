/**
 * Container test (`npm run test:containers`, through run.sh): builds the image on the local Node 20 base, brings
 * docker-compose.yml up under a project name of its own, with throwaway secrets, an operator-chosen administrator,
 * the local PostgreSQL and Redis images and unused loopback ports, waits until every service is healthy, then checks
 * from outside, through the published ports only, what a deployment promises: the operator's administrator logs in
 * and the public demo one does not; a customer's order reaches CONFIRMED live over graphql-ws; OrderDetails answers
 * from every subgraph; the notification worker delivers; the dashboard serves administrators only; metrics are not on
 * the client port. The stack is taken down (`down -v`) on every way out. Exits non-zero when a check fails.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { ORDER_DETAILS } from '../../router/test/fixtures/operations.js';
import { freePort } from '@shop/common/test-servers';

const root = fileURLToPath(new URL('../..', import.meta.url));
const IMAGE = process.env.SHOP_TEST_IMAGE ?? 'shop-supergraph:container-test';
const NODE_IMAGE = process.env.NODE_IMAGE ?? 'node:20-bookworm-slim';
const POSTGRES_IMAGE = process.env.POSTGRES_IMAGE ?? 'postgres:15-bookworm';
const REDIS_IMAGE = process.env.REDIS_IMAGE ?? 'redis:7-bookworm';
/** From `up` until every service is healthy (a cold PostgreSQL initialises its four databases first; a busy host). */
const HEALTHY_WITHIN_MS = 8 * 60_000;
const DEMO_ADMIN = { email: 'admin@shop.example', password: 'admin-demo-password' };

const log = (message: string) => process.stdout.write(`[containers] ${message}\n`);

/** Runs a command; its output goes to ours unless captured. Rejects on a non-zero exit. */
function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; capture?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      env: options.env ?? process.env,
      stdio: options.capture ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${err.trim()}`))));
  });
}

/** Seconds since it was made, to one decimal. */
function stopwatch() {
  const start = performance.now();
  return { seconds: () => ((performance.now() - start) / 1000).toFixed(1) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const secret = () => randomBytes(32).toString('hex');

// ---- the stack ------------------------------------------------------------------------------------------------------

const project = `shopct${randomBytes(4).toString('hex')}`;
const ports = { router: await freePort(), dashboard: await freePort(), metrics: await freePort() };
const admin = { email: `operator-${randomBytes(3).toString('hex')}@ops.example`, password: randomBytes(18).toString('base64url') };
const scratch = await mkdtemp(path.join(tmpdir(), 'shop-containers-'));
const envFile = path.join(scratch, 'stack.env');
/** Both the services' settings (env_file) and compose's own variables (--env-file): a user's .env is never read. */
const settings: Record<string, string> = {
  POSTGRES_PASSWORD: secret(),
  IDENTITY_SECRET: secret(),
  JWT_SECRET: secret(),
  ADMIN_EMAIL: admin.email,
  ADMIN_PASSWORD: admin.password,
  LOG_LEVEL: 'info',
  QUEUE_PREFIX: 'shop',
  METRICS_PORT: String(ports.metrics),
  SHOP_IMAGE: IMAGE,
  SHOP_ENV_FILE: envFile,
  POSTGRES_IMAGE,
  REDIS_IMAGE,
  ROUTER_BIND: '127.0.0.1',
  ROUTER_PORT: String(ports.router),
  DASHBOARD_PORT: String(ports.dashboard),
};
await writeFile(envFile, Object.entries(settings).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
const composeEnv = { ...process.env, ...settings, COMPOSE_PROJECT_NAME: project };
const compose = (args: string[], capture = false) =>
  run('docker-compose', ['--project-name', project, '--file', 'docker-compose.yml', '--env-file', envFile, ...args], { env: composeEnv, capture });

let cleaning: Promise<void> | undefined;
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    log(`down -v (project ${project})`);
    await compose(['down', '--volumes', '--remove-orphans', '--timeout', '10']).catch((error: unknown) => log(`down failed: ${String(error)}`));
    await rm(scratch, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping`);
    void cleanUp().finally(() => process.exit(130));
  });
}

interface ContainerState {
  service: string;
  status: string;
  health: string | undefined;
  exitCode: number;
  restarts: number;
}

async function containers(): Promise<ContainerState[]> {
  const ids = (await compose(['ps', '--all', '-q'], true).catch(() => compose(['ps', '-q'], true))).split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const format = '{{index .Config.Labels "com.docker.compose.service"}}|{{.State.Status}}|{{if .State.Health}}{{.State.Health.Status}}{{end}}|{{.State.ExitCode}}|{{.RestartCount}}';
  const out = await run('docker', ['inspect', '--format', format, ...ids], { capture: true });
  return out.split('\n').filter(Boolean).map((line) => {
    const [service, status, health, exitCode, restarts] = line.split('|');
    return { service: service!, status: status!, health: health || undefined, exitCode: Number(exitCode), restarts: Number(restarts) };
  });
}

/** Healthy by its healthcheck; a service without one (the worker) is running; the one-shot migration exited 0. */
function ready(c: ContainerState): boolean {
  if (c.service === 'migrate') return c.status === 'exited' && c.exitCode === 0;
  return c.health === undefined ? c.status === 'running' : c.health === 'healthy';
}

// ---- GraphQL from outside -------------------------------------------------------------------------------------------

const routerUrl = `http://127.0.0.1:${ports.router}/graphql`;
interface Answer<T> {
  status: number;
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string; retryAfterSeconds?: number } }[];
}
async function graphql<T>(query: string, variables: Record<string, unknown> = {}, token?: string): Promise<Answer<T>> {
  const response = await fetch(routerUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    // Generous: logins hash with scrypt, and a loaded host runs ten containers.
    signal: AbortSignal.timeout(60_000),
  });
  return { status: response.status, ...((await response.json()) as Omit<Answer<T>, 'status'>) };
}
/** Answers the services gave as SERVICE_UNAVAILABLE and the client retried, as a frontend is told to; in the summary. */
let unavailableRetries = 0;
/**
 * The data of an answer without errors. A SERVICE_UNAVAILABLE answer (nothing was written) is retried after its
 * retryAfterSeconds, twice at most, as the README tells clients to; each retry is logged and counted.
 */
async function ok<T>(query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const answer = await graphql<T>(query, variables, token);
    const unavailable = answer.errors?.length && answer.errors.every((e) => e.extensions?.code === 'SERVICE_UNAVAILABLE');
    if (unavailable && attempt <= 2) {
      unavailableRetries++;
      const wait = Math.min(answer.errors![0]!.extensions?.retryAfterSeconds ?? 1, 5);
      log(`SERVICE_UNAVAILABLE (${answer.errors![0]!.message}); retrying in ${wait} s as the answer asks`);
      await sleep(wait * 1000);
      continue;
    }
    if (answer.errors?.length || !answer.data) throw new Error(`GraphQL errors: ${JSON.stringify(answer.errors ?? answer)}`);
    return answer.data;
  }
}

const LOGIN = 'mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) { token user { id email role } } }';
interface Login {
  login: { token: string; user: { id: string; email: string; role: string } };
}
/** Logs in, retrying a while: the first logins after start meet a cold scrypt and a busy machine. */
async function login(email: string, password: string): Promise<Answer<Login>> {
  let answer: Answer<Login> | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    answer = await graphql<Login>(LOGIN, { email, password }).catch((error: unknown) => ({ status: 0, errors: [{ message: String(error) }] }));
    const code = answer.errors?.[0]?.extensions?.code;
    if (answer.data?.login || code === 'UNAUTHENTICATED' || code === 'TOO_MANY_REQUESTS') return answer;
    await sleep(2_000);
  }
  return answer!;
}

/**
 * Signs up and logs in. createUser may answer with the router's deadline while the account is still being committed
 * (scrypt on a busy host), so the login is retried for a while before giving up.
 */
async function signUp(email: string, name: string, password: string): Promise<Answer<Login>> {
  const created = await graphql<{ createUser: { id: string } }>('mutation($input: CreateUserInput!) { createUser(input: $input) { id } }', {
    input: { email, name, password },
  }).catch((error: unknown) => ({ status: 0, errors: [{ message: String(error), extensions: { code: 'NETWORK' } }] }) as Answer<never>);
  if (created.errors?.[0]?.extensions?.code === 'BAD_USER_INPUT') return created as Answer<Login>;
  let answer: Answer<Login> | undefined;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    answer = await login(email, password);
    if (answer.data?.login) return answer;
    await sleep(2_000);
  }
  return answer!;
}

interface OrderDetails {
  order: {
    id: string;
    status: string;
    total: { amount: number; currency: string };
    user: { id: string; email: string };
    items: { quantity: number; product: { id: string; sku: string; stock: number; inStock: boolean; shippingEstimate: { amount: number } | null } }[];
  } | null;
}

// ---- checks ---------------------------------------------------------------------------------------------------------

const results: { name: string; ok: boolean; detail?: string }[] = [];
async function check(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
    results.push({ name, ok: true });
    log(`ok    ${name}`);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    results.push({ name, ok: false, detail });
    log(`FAIL  ${name}: ${detail}`);
  }
}
function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(500);
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (last: ${String(last)})` : ''}`);
}

async function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.text() };
}

async function checks(): Promise<void> {
  let adminToken: string | undefined;
  await check('the operator-created administrator logs in as ADMIN', async () => {
    const answer = await login(admin.email, admin.password);
    expect(answer.data?.login, `login refused: ${JSON.stringify(answer.errors)}`);
    expect(answer.data.login.user.role === 'ADMIN', `role is ${answer.data.login.user.role}`);
    adminToken = answer.data.login.token;
  });

  await check('the public demo administrator cannot log in', async () => {
    const answer = await login(DEMO_ADMIN.email, DEMO_ADMIN.password);
    expect(!answer.data?.login, 'admin@shop.example logged in');
    expect(answer.errors?.[0]?.extensions?.code === 'UNAUTHENTICATED', `expected UNAUTHENTICATED, got ${JSON.stringify(answer.errors)}`);
  });

  // A customer signs up and orders a product the administrator adds: production starts with no demo catalog.
  let productId: string | undefined;
  await check('the administrator adds a product and its stock', async () => {
    expect(adminToken, 'no administrator token');
    const sku = `CT-${randomBytes(3).toString('hex')}`;
    const created = await ok<{ createProduct: { id: string } }>(
      'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
      { input: { sku, name: 'Container test kettle', description: '', price: { amount: 2599, currency: 'USD' }, category: 'kitchen', weightGrams: 1200 } },
      adminToken,
    );
    productId = created.createProduct.id;
    const restocked = await ok<{ restock: { stock: number } }>(
      'mutation($id: ID!) { restock(productId: $id, quantity: 10) { stock } }',
      { id: productId },
      adminToken,
    );
    expect(restocked.restock.stock === 10, `stock ${restocked.restock.stock}`);
  });

  const customer = { email: `customer-${randomBytes(3).toString('hex')}@shop.test`, password: randomBytes(12).toString('hex') };
  let customerToken: string | undefined;
  let customerId: string | undefined;
  await check('a customer signs up and logs in', async () => {
    const answer = await signUp(customer.email, 'Container Customer', customer.password);
    expect(answer.data?.login, `login refused: ${JSON.stringify(answer.errors)}`);
    expect(answer.data.login.user.role === 'CUSTOMER', `role is ${answer.data.login.user.role}`);
    customerToken = answer.data.login.token;
    customerId = answer.data.login.user.id;
  });

  let orderId: string | undefined;
  await check('an order placed by the customer reaches CONFIRMED, seen live over graphql-ws', async () => {
    expect(customerToken && customerId && productId, 'no customer or product');
    const client = createClient({
      url: routerUrl.replace('http', 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${customerToken}` },
    });
    const statuses: string[] = [];
    const errors: unknown[] = [];
    let subscribed!: () => void;
    const acknowledged = new Promise<void>((resolve) => (subscribed = resolve));
    client.on('connected', () => subscribed());
    const stop = client.subscribe<{ orderUpdates: { id: string; status: string } }>(
      { query: 'subscription($u: ID!) { orderUpdates(userId: $u) { id status } }', variables: { u: customerId } },
      {
        next: (result) => {
          if (result.errors) errors.push(result.errors);
          if (result.data) statuses.push(result.data.orderUpdates.status);
        },
        error: (error) => errors.push(error),
        complete: () => undefined,
      },
    );
    try {
      await Promise.race([acknowledged, sleep(10_000).then(() => Promise.reject(new Error('graphql-ws did not connect')))]);
      // The subscription is registered upstream a moment after the socket is acknowledged.
      await sleep(1_000);
      const placed = await ok<{ placeOrder: { id: string; status: string } }>(
        'mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }',
        { input: { items: [{ productId, quantity: 2 }], idempotencyKey: `ct-${randomBytes(8).toString('hex')}` } },
        customerToken,
      );
      orderId = placed.placeOrder.id;
      await poll('CONFIRMED over graphql-ws', 30_000, async () => {
        expect(errors.length === 0, `subscription errors: ${JSON.stringify(errors)}`);
        return statuses.includes('CONFIRMED') ? true : undefined;
      });
      expect(statuses.join(',') === 'PENDING,CONFIRMED', `statuses ${statuses.join(',')}`);
    } finally {
      stop();
      await client.dispose();
    }
  });

  await check('OrderDetails answers with data from every subgraph', async () => {
    expect(adminToken && orderId, 'no administrator token or order');
    const { order } = await ok<OrderDetails>(ORDER_DETAILS, { id: orderId }, adminToken);
    expect(order?.status === 'CONFIRMED', `status ${order?.status}`);
    expect(order.user.email === customer.email, `user ${order.user.email}`);
    expect(order.total.amount === 2 * 2599 && order.total.currency === 'USD', `total ${JSON.stringify(order.total)}`);
    const line = order.items[0];
    expect(line?.quantity === 2 && line.product.id === productId, `items ${JSON.stringify(order.items)}`);
    // Inventory: two of the ten units are reserved by the order.
    expect(line.product.stock === 8 && line.product.inStock, `stock ${line.product.stock}`);
    expect(line.product.shippingEstimate && line.product.shippingEstimate.amount > 0, 'no shipping estimate');
  });

  await check('the notification worker delivers (the customer has WELCOME and ORDER_CONFIRMED)', async () => {
    expect(customerToken, 'no customer token');
    await poll('notifications', 30_000, async () => {
      const { me } = await ok<{ me: { notifications: { edges: { node: { kind: string } }[] } } }>(
        '{ me { notifications { edges { node { kind } } } } }',
        {},
        customerToken,
      );
      const kinds = me.notifications.edges.map((e) => e.node.kind);
      return kinds.includes('WELCOME') && kinds.includes('ORDER_CONFIRMED') ? kinds : undefined;
    });
  });

  const dashboard = `http://127.0.0.1:${ports.dashboard}`;
  await check('the dashboard refuses an anonymous request (401)', async () => {
    const page = await httpGet(`${dashboard}/queues`);
    expect(page.status === 401, `GET /queues answered ${page.status}`);
    const api = await httpGet(`${dashboard}/queues/api/queues`);
    expect(api.status === 401, `GET /queues/api/queues answered ${api.status}`);
  });

  await check('the dashboard serves the administrator', async () => {
    expect(adminToken, 'no administrator token');
    const api = await httpGet(`${dashboard}/queues/api/queues`, { authorization: `Bearer ${adminToken}` });
    expect(api.status === 200, `GET /queues/api/queues as ADMIN answered ${api.status}`);
    expect(api.body.includes('notifications'), 'no notifications queue in the answer');
  });

  await check('the dashboard refuses a customer', async () => {
    expect(customerToken, 'no customer token');
    const api = await httpGet(`${dashboard}/queues/api/queues`, { authorization: `Bearer ${customerToken}` });
    expect(api.status === 401 || api.status === 403, `GET /queues/api/queues as CUSTOMER answered ${api.status}`);
  });

  await check('router metrics are not on the client port', async () => {
    const metrics = await httpGet(`http://127.0.0.1:${ports.router}/metrics`);
    expect(metrics.status === 404, `GET /metrics on the client port answered ${metrics.status}`);
  });

  await check('router metrics are on the loopback metrics port, prefixed shop_router_', async () => {
    const metrics = await httpGet(`http://127.0.0.1:${ports.metrics}/metrics`);
    expect(metrics.status === 200, `GET /metrics on the metrics port answered ${metrics.status}`);
    expect(/^shop_router_/m.test(metrics.body), 'no shop_router_ series');
  });
}

// ---- main -----------------------------------------------------------------------------------------------------------

const total = stopwatch();
let failed = false;
let firstAnswer = '?';
let imageSize = '?';
try {
  // `-- --no-build` reuses the image of an earlier run (while working on the checks).
  if (process.argv.includes('--no-build')) {
    log(`using the existing ${IMAGE}`);
  } else {
    log(`building ${IMAGE} on ${NODE_IMAGE}`);
    const build = stopwatch();
    await run('docker', ['build', '--build-arg', `NODE_IMAGE=${NODE_IMAGE}`, '--tag', IMAGE, '.']);
    log(`built in ${build.seconds()} s`);
  }
  const bytes = Number((await run('docker', ['image', 'inspect', '--format', '{{.Size}}', IMAGE], { capture: true })).trim());
  imageSize = `${(bytes / 1e6).toFixed(0)} MB`;
  log(`image ${IMAGE}: ${imageSize}`);

  log(`up (project ${project}; router 127.0.0.1:${ports.router}, dashboard ${ports.dashboard}, metrics ${ports.metrics})`);
  const up = stopwatch();
  await compose(['up', '--detach', '--no-build']);
  await poll('the router\'s first answer', HEALTHY_WITHIN_MS, async () => ((await httpGet(`http://127.0.0.1:${ports.router}/health`)).status === 200 ? true : undefined));
  firstAnswer = `${up.seconds()} s`;
  log(`router answered ${firstAnswer} after up`);
  const states = await poll('every service healthy', HEALTHY_WITHIN_MS, async () => {
    const all = await containers();
    return all.length > 0 && all.every(ready) ? all : undefined;
  });
  log(`every service healthy ${up.seconds()} s after up: ${states.map((c) => `${c.service}=${c.health ?? c.status}`).join(', ')}`);

  await checks();
  const after = await containers();
  await check('no service restarted', async () => {
    const restarted = after.filter((c) => c.restarts > 0);
    expect(restarted.length === 0, restarted.map((c) => `${c.service} restarted ${c.restarts}x`).join(', '));
  });

  failed = results.some((r) => !r.ok);
  log(`${results.filter((r) => r.ok).length}/${results.length} checks passed; SERVICE_UNAVAILABLE answers retried: ${unavailableRetries}`);
  for (const r of results.filter((r) => !r.ok)) log(`failed: ${r.name}: ${r.detail}`);
} catch (error) {
  failed = true;
  log(`error: ${error instanceof Error ? error.message : String(error)}`);
  await compose(['ps']).catch(() => undefined);
  await compose(['logs', '--no-color', '--tail', '40']).catch(() => undefined);
} finally {
  if (failed && results.some((r) => !r.ok)) await compose(['logs', '--no-color', '--tail', '20']).catch(() => undefined);
  await cleanUp();
  log(`${failed ? 'FAILED' : 'passed'} in ${total.seconds()} s (image ${imageSize}; up to the router's first answer ${firstAnswer})`);
}
process.exit(failed ? 1 : 0);
