import { randomBytes, randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { createLogger, createRedis, openDatabase, type Database } from '@shop/common';
import { createTestRedis, type TestRedis } from '@shop/common/testing';
import { NOTIFICATIONS_QUEUE, welcomeJobId, welcomeMessage } from '../src/notifications/jobs.js';
import { readWorkerProcessConfig } from '../src/notifications/config.js';
import { notificationCount, waitForState } from './support.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const log = createLogger('worker-process-test', 'silent');
let redis: TestRedis;

beforeAll(async () => {
  redis = await createTestRedis('worker-process');
});
afterAll(() => redis?.cleanup());

/**
 * Runs worker-main.ts as `npm run worker` does, its probes on a free port; `untilOutput` runs `then` (with the output so
 * far) once stdout contains its text, and sends SIGTERM when that resolves.
 */
function runWorker(env: NodeJS.ProcessEnv, untilOutput?: { text: string; then: (stdout: string) => Promise<void> }) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'subgraphs/users/src/worker-main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, LOG_LEVEL: 'info', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let triggered = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (untilOutput && !triggered && stdout.includes(untilOutput.text)) {
      triggered = true;
      untilOutput.then(stdout).then(
        () => child.kill('SIGTERM'),
        (error: unknown) => {
          stderr += `test step failed: ${String(error)}\n`;
          child.kill('SIGKILL');
        },
      );
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr })),
  );
}

/** The address of the worker's probes, from its log. */
function probesOf(stdout: string): string {
  const url = /"url":"(http:\/\/[^"]+)\/health".*"msg":"probes served"/.exec(stdout)?.[1];
  if (!url) throw new Error(`no "probes served" line in:\n${stdout}`);
  return url;
}

async function probe(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text() };
}

describe('worker process', () => {
  it('serves its probes on 0.0.0.0:4006 in production, on a free loopback port elsewhere, or where HOST and PORT say', () => {
    const database = { USERS_DATABASE_URL: 'postgres://db.internal/users' };
    const at = (env: NodeJS.ProcessEnv) => {
      const { host, port } = readWorkerProcessConfig({ ...database, ...env });
      return { host, port };
    };
    expect(at({ NODE_ENV: 'production' })).toEqual({ host: '0.0.0.0', port: 4006 });
    expect(at({})).toEqual({ host: '127.0.0.1', port: 0 });
    expect(at({ PORT: '4016', HOST: '::1' })).toEqual({ host: '::1', port: 4016 });
  });


  it.each([
    [{ NODE_ENV: 'production' }, /USERS_DATABASE_URL is required/],
    [{ USERS_DATABASE_URL: 'postgres://127.0.0.1:1/none', NOTIFICATION_CONCURRENCY: '0' }, /NOTIFICATION_CONCURRENCY must be an integer between 1 and 1000/],
    [{ USERS_DATABASE_URL: 'postgres://127.0.0.1:1/none' }, /ECONNREFUSED/],
  ])('exits non-zero with a message when it cannot start (%j)', async (env, message) => {
    const { code, stderr } = await runWorker({ REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix, ...env });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^notification worker failed to start: /);
    expect(stderr).toMatch(message);
  });

  it('idles in development without USERS_DATABASE_URL (the users subgraph runs the worker) and stops on SIGTERM', async () => {
    const { code, stdout } = await runWorker(
      { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix },
      { text: 'runs the notification worker in its process', then: async () => undefined },
    );
    expect(code).toBe(0);
    expect(stdout).toContain('notification worker stopped');
  });

  describe.skipIf(!process.env.TEST_DATABASE_URL)('on PostgreSQL', () => {
    const name = `shop_test_worker_${randomBytes(4).toString('hex')}`;
    let admin: Database;
    let db: Database;
    let databaseUrl: string;

    beforeAll(async () => {
      admin = await openDatabase({ url: process.env.TEST_DATABASE_URL, poolSize: 1 });
      await admin.query(`CREATE DATABASE ${name}`);
      const url = new URL(process.env.TEST_DATABASE_URL!);
      url.pathname = `/${name}`;
      databaseUrl = url.toString();
      db = await openDatabase({ url: databaseUrl, poolSize: 2 });
    });
    afterAll(async () => {
      await db?.close();
      await admin?.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin?.close();
    });

    it('migrates, delivers a job and stops cleanly on SIGTERM', async () => {
      const connection = createRedis(redis.url, log);
      const queue = new Queue(NOTIFICATIONS_QUEUE, { connection, prefix: redis.prefix });
      const userId = randomUUID();
      try {
        const { code, stdout, stderr } = await runWorker(
          { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix, USERS_DATABASE_URL: databaseUrl },
          {
            text: 'notification worker started',
            then: async (stdout) => {
              const probes = probesOf(stdout);
              expect(await probe(`${probes}/health`)).toEqual({ status: 200, body: { status: 'ok' } });
              expect(await probe(`${probes}/ready`)).toEqual({
                status: 200,
                body: { status: 'ready', checks: { database: 'ok', redis: 'ok', worker: 'ok' } },
              });
              const metrics = await probe(`${probes}/metrics`);
              expect(metrics.status).toBe(200);
              expect(metrics.body).toMatch(/^# TYPE \w+/m);
              // The worker migrated the empty database before it started.
              await db.query("INSERT INTO users (id, email, name) VALUES ($1, 'proc@example.com', 'Process Person')", [userId]);
              const message = welcomeMessage(userId);
              if (message.kind !== 'job') throw new Error('expected a job');
              await queue.add(message.name, message.payload, { jobId: message.jobId });
              await waitForState(queue, message.jobId, 'completed');
            },
          },
        );
        expect(stderr).toBe('');
        expect(code).toBe(0);
        expect(stdout).toContain('"signal":"SIGTERM"');
        expect(stdout).toContain('notification worker stopped');
        expect(await notificationCount(db, welcomeJobId(userId))).toBe(1);
      } finally {
        await queue.close();
        connection.disconnect();
      }
    });

    it('answers /health while it cannot reach Redis, and /ready 503 naming what is missing', async () => {
      let ready: unknown;
      let health: unknown;
      const { code, stdout } = await runWorker(
        { REDIS_URL: 'redis://127.0.0.1:1', QUEUE_PREFIX: redis.prefix, USERS_DATABASE_URL: databaseUrl },
        {
          text: 'probes served',
          then: async (output) => {
            const probes = probesOf(output);
            health = await probe(`${probes}/health`);
            ready = await probe(`${probes}/ready`);
          },
        },
      );
      expect(health).toEqual({ status: 200, body: { status: 'ok' } });
      expect(ready).toMatchObject({
        status: 503,
        body: { status: 'unavailable', checks: { database: 'ok', redis: expect.not.stringMatching(/^ok$/), worker: 'not consuming jobs' } },
      });
      expect(stdout).toContain('notification worker stopped');
      expect(code).toBe(0);
    });
  });
});
