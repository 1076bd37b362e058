/**
 * `npm start`: runs the four subgraphs, the notification worker, the router and
 * the web app's dev server as separate processes, as they run in production, and stops them all on
 * Ctrl-C. Each subgraph migrates its database and loads the demo data into an
 * empty one as it starts. Without REDIS_URL it uses a Redis on 127.0.0.1:6379,
 * or starts a private redis-server when none answers there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SERVICES, type Service } from './services.js';
import { redisAnswers, startPrivateRedis } from './redis.js';
import { DEMO_ADMIN, DEMO_CUSTOMER_PASSWORD, logFormat } from '@shop/common';

const root = fileURLToPath(new URL('..', import.meta.url));
const children = new Map<string, ChildProcess>();
const env: NodeJS.ProcessEnv = { ...process.env };
// The services write to pipes (prefixed here), not to the terminal: ask them for readable lines when this runs on one.
env.LOG_FORMAT ??= logFormat(process.env, process.stdout);
const PRIVATE_REDIS_PORT = 6390;
let stopping = false;

function prefixLines(name: string, stream: NodeJS.ReadableStream, out: NodeJS.WritableStream): void {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) out.write(`${name.padEnd(9)} | ${line}\n`);
  });
}

async function waitForHealth(name: string, port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!children.has(name)) throw new Error(`${name} exited during start-up`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not become healthy on port ${port} within ${timeoutMs / 1000}s`);
}

function start(service: Service): void {
  const child = spawn(process.execPath, ['--import', 'tsx', service.entry], {
    cwd: root,
    env: { ...env, ...(service.port ? { PORT: String(service.port) } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.set(service.name, child);
  prefixLines(service.name, child.stdout!, process.stdout);
  prefixLines(service.name, child.stderr!, process.stderr);
  child.on('exit', (code, signal) => {
    children.delete(service.name);
    if (!stopping) {
      process.stderr.write(`${service.name} exited (${signal ?? code}); stopping everything\n`);
      void stopAll(1);
    }
  });
}

async function stopAll(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Services first (their workers finish jobs against Redis), the private Redis last.
  const stopGroup = async (group: ChildProcess[]) => {
    const exits = group.map((child) => new Promise((resolve) => child.once('exit', resolve)));
    for (const child of group) child.kill('SIGTERM');
    const timeout = setTimeout(() => group.forEach((child) => child.kill('SIGKILL')), 10_000);
    await Promise.all(exits);
    clearTimeout(timeout);
  };
  const redis = children.get('redis');
  await stopGroup([...children.values()].filter((child) => child !== redis));
  if (redis) await stopGroup([redis]);
  process.exit(exitCode);
}

process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

async function ensureRedis(): Promise<void> {
  if (env.REDIS_URL) return;
  // Named for every service, the router included (it only uses Redis when told where: APQ, rate limit, entity cache).
  if (await redisAnswers('127.0.0.1', 6379)) {
    env.REDIS_URL = 'redis://127.0.0.1:6379';
    return;
  }
  const redis = await startPrivateRedis(PRIVATE_REDIS_PORT);
  if (!redis) {
    process.stderr.write(
      'Redis is needed for the order queues and live updates, and none answers on 127.0.0.1:6379.\n' +
        'Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) and run npm start again,\n' +
        'or point REDIS_URL at one (e.g. REDIS_URL=redis://my-redis:6379 npm start).\n',
    );
    process.exit(1);
  }
  children.set('redis', redis);
  redis.on('exit', () => {
    children.delete('redis');
    if (!stopping) void stopAll(1);
  });
  env.REDIS_URL = `redis://127.0.0.1:${PRIVATE_REDIS_PORT}`;
  process.stdout.write(`Started a private redis-server on port ${PRIVATE_REDIS_PORT} (no data kept).\n`);
}

try {
  await ensureRedis();
  const backends = SERVICES.filter((s) => s.name !== 'router' && s.name !== 'web' && (s.when?.(env) ?? true));
  for (const service of backends) start(service);
  await Promise.all(backends.map((s) => (s.port ? waitForHealth(s.name, s.port) : Promise.resolve())));
  const router = SERVICES.find((s) => s.name === 'router')!;
  start(router);
  await waitForHealth(router.name, router.port!);
  const web = SERVICES.find((s) => s.name === 'web')!;
  env.ROUTER_URL ??= `http://127.0.0.1:${router.port}`;
  start(web);
  await waitForHealth(web.name, web.port!);
  process.stdout.write(
    `\nThe shop is running.\nOpen the shop (web app): http://localhost:${web.port}/\n` +
      `Explore the API in Apollo Sandbox: http://localhost:${router.port}/graphql\n` +
      // Demo data only (README, "Security model"): send the token as `Authorization: Bearer <token>`.
      `Log in with login(email: "${DEMO_ADMIN.email}", password: "${DEMO_ADMIN.password}") (customers: "${DEMO_CUSTOMER_PASSWORD}")\n` +
      `Queues (Bull Board, log in as the administrator): http://localhost:4005/login\n` +
      `Router metrics (Prometheus): http://127.0.0.1:9464/metrics\nPress Ctrl-C to stop.\n\n`,
  );
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  await stopAll(1);
}
