import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { createLogger, createRedis, demoShop } from '@shop/common';
import { createTestRedis, startTestSubgraph, type TestRedis, type TestSubgraph } from '@shop/common/testing';
import { NOTIFICATIONS_QUEUE, orderStatusJobId, welcomeJobId } from '../src/notifications/jobs.js';
import { startNotificationWorker, type NotificationWorker } from '../src/notifications/worker.js';
import type { UsersRuntime } from '../src/runtime.js';
import { users } from '../src/server.js';
import { BlockingTransport, RecordingTransport, notificationCount, orderPayload, waitForState } from './support.js';

const log = createLogger('notifications-test', 'silent');
const shop = demoShop();
let redis: TestRedis;
let subgraph: TestSubgraph & { runtime: UsersRuntime | undefined };
let env: NodeJS.ProcessEnv;

const queue = () => subgraph.runtime!.queue;

beforeAll(async () => {
  redis = await createTestRedis('notifications');
  env = {
    REDIS_URL: redis.url,
    QUEUE_PREFIX: redis.prefix,
    // Each test starts the workers it needs, with the transport it needs.
    NOTIFICATION_WORKER_IN_PROCESS: 'false',
    NOTIFICATION_BACKOFF_MS: '50',
  };
  subgraph = await startTestSubgraph(users, { seed: true, env });
});
afterAll(async () => {
  await subgraph?.close();
  await redis?.cleanup();
});

/** Runs fn with workers that are closed afterwards whatever happens, so no test's worker takes another's jobs. */
async function withWorkers<T>(fn: (started: NotificationWorker[]) => Promise<T>): Promise<T> {
  const started: NotificationWorker[] = [];
  try {
    return await fn(started);
  } finally {
    for (const w of started) await w.close(true);
  }
}

describe('notification worker', () => {
  it('renders an order notification with the name, lines and total, HTML-escaped', async () => {
    const user = shop.users[1]!;
    await subgraph.db.query('UPDATE users SET name = $2 WHERE id = $1', [user.id, 'Ann <script>&']);
    const orderId = randomUUID();
    const jobId = orderStatusJobId(orderId, 'REJECTED');
    const transport = new RecordingTransport();
    await withWorkers(async (started) => {
      started.push(await startNotificationWorker(subgraph.db, env, log, { transport }));
      await queue().add('order-status', orderPayload(user.id, orderId, 'REJECTED'), { jobId });
      await waitForState(queue(), jobId, 'completed');
    });

    expect(transport.sent).toHaveLength(1);
    const message = transport.sent[0]!;
    const ref = `#${orderId.replace(/-/g, '').slice(0, 8).toUpperCase()}`;
    expect(message.to).toEqual({ name: 'Ann <script>&', email: user.email });
    expect(message.messageId).toBe(`<${jobId}@shop.example>`);
    expect(message.subject).toBe(`We could not accept your order ${ref}`);
    expect(message.text).toContain('Hi Ann <script>&,');
    expect(message.text).toContain('Reason: Not enough stock for <Mug & Co>');
    expect(message.text).toContain('- Mug <Deluxe> & "Co": 2 x $12.50 = $25.00');
    expect(message.text).toContain('- Product p-2: 1 x $9.99 = $9.99');
    expect(message.text).toContain('Total: $34.99');
    expect(message.html).toContain('Hi Ann &lt;script&gt;&amp;,');
    expect(message.html).toContain('<td>Mug &lt;Deluxe&gt; &amp; &quot;Co&quot;</td>');
    expect(message.html).toContain('<strong>$34.99</strong>');
    expect(message.html).not.toContain('<script>');

    const [row] = await subgraph.db.query<Record<string, unknown>>(
      'SELECT user_id, kind, subject, text_body, html_body, transport, recipient, message_id FROM notifications WHERE job_id = $1',
      [jobId],
    );
    expect(row).toEqual({
      user_id: user.id,
      kind: 'ORDER_REJECTED',
      subject: message.subject,
      text_body: message.text,
      html_body: message.html,
      transport: 'LOCAL',
      recipient: user.email,
      message_id: message.messageId,
    });
  });

  it('sends a job id added twice once, and records once even when BullMQ has forgotten the first', async () => {
    const user = shop.users[2]!;
    const orderId = randomUUID();
    const jobId = orderStatusJobId(orderId, 'SHIPPED');
    const transport = new RecordingTransport();
    await withWorkers(async (started) => {
      started.push(await startNotificationWorker(subgraph.db, env, log, { transport }));
      await queue().add('order-status', orderPayload(user.id, orderId, 'SHIPPED'), { jobId });
      await waitForState(queue(), jobId, 'completed');
      // The completed job is kept, so BullMQ ignores the same id.
      await queue().add('order-status', orderPayload(user.id, orderId, 'SHIPPED'), { jobId });
      expect(await (await queue().getJob(jobId))!.getState()).toBe('completed');

      // Once the completed job is gone, the same id runs again; the worker finds the row and sends nothing.
      await (await queue().getJob(jobId))!.remove();
      await queue().add('order-status', orderPayload(user.id, orderId, 'SHIPPED'), { jobId });
      const again = await waitForState(queue(), jobId, 'completed');
      expect(again.returnvalue).toEqual({ delivered: false });
    });
    expect(transport.sent).toHaveLength(1);
    expect(await notificationCount(subgraph.db, jobId)).toBe(1);
  });

  it('retries a transient transport failure with exponential backoff and records once', async () => {
    const user = shop.users[3]!;
    const orderId = randomUUID();
    const jobId = orderStatusJobId(orderId, 'CONFIRMED');
    const transport = new RecordingTransport(2);
    const job = await withWorkers(async (started) => {
      started.push(await startNotificationWorker(subgraph.db, env, log, { transport }));
      await queue().add('order-status', orderPayload(user.id, orderId, 'CONFIRMED'), { jobId });
      return waitForState(queue(), jobId, 'completed');
    });

    expect(transport.calls).toHaveLength(3);
    expect(job.attemptsStarted).toBe(3);
    expect(job.opts.attempts).toBe(5);
    // NOTIFICATION_BACKOFF_MS=50: the retries wait at least 50 ms, then 100 ms.
    const [first, second, third] = transport.calls.map((c) => c.at) as [number, number, number];
    expect(second - first).toBeGreaterThanOrEqual(50);
    expect(third - second).toBeGreaterThanOrEqual(100);
    expect(await notificationCount(subgraph.db, jobId)).toBe(1);
  });

  it('fails a job for an unknown user without retries, and a retry succeeds once the user exists', async () => {
    const userId = randomUUID();
    const orderId = randomUUID();
    const jobId = orderStatusJobId(orderId, 'PENDING');
    const transport = new RecordingTransport();
    await withWorkers(async (started) => {
      started.push(await startNotificationWorker(subgraph.db, env, log, { transport }));
      await queue().add('order-status', orderPayload(userId, orderId, 'PENDING'), { jobId });
      const failed = await waitForState(queue(), jobId, 'failed');
      expect(failed.failedReason).toBe(`user ${userId} does not exist`);
      expect(failed.attemptsStarted).toBe(1);
      expect(transport.sent).toHaveLength(0);
      // The dead letter: operators see it in the failed set.
      expect((await queue().getFailed()).map((j) => j.id)).toContain(jobId);

      await subgraph.db.query("INSERT INTO users (id, email, name) VALUES ($1, 'late@example.com', 'Late Comer')", [userId]);
      await failed.retry();
      await waitForState(queue(), jobId, 'completed');
    });
    expect(transport.sent.map((m) => m.to.name)).toEqual(['Late Comer']);
    expect(await notificationCount(subgraph.db, jobId)).toBe(1);
  });

  it.each([
    ['order-status', { userId: shop.users[0]!.id, orderId: 'o-1', status: 'LOST', items: [], total: null }, /status must be one of/],
    ['welcome', { userId: 'not-a-uuid' }, /welcome job: userId must be a UUID/],
    ['birthday', { userId: shop.users[0]!.id }, /unknown notification job name "birthday"/],
  ])('fails a malformed %s job without retries; retry works after fixing its data', async (name, data, reason) => {
    const jobId = `malformed-${randomUUID()}`;
    await withWorkers(async (started) => {
      started.push(await startNotificationWorker(subgraph.db, env, log, { transport: new RecordingTransport() }));
      await queue().add(name, data, { jobId });
      const failed = await waitForState(queue(), jobId, 'failed');
      expect(failed.failedReason).toMatch(reason);
      expect(failed.attemptsStarted).toBe(1);
      if (name === 'birthday') return;

      await failed.updateData(name === 'welcome' ? { userId: shop.users[0]!.id } : orderPayload(shop.users[0]!.id, 'o-1', 'PENDING'));
      await failed.retry();
      await waitForState(queue(), jobId, 'completed');
      expect(await notificationCount(subgraph.db, jobId)).toBe(1);
    });
  });

  it('records once when a worker dies mid-job and another takes the job over', async () => {
    const user = shop.users[4]!;
    const orderId = randomUUID();
    const jobId = orderStatusJobId(orderId, 'DELIVERED');
    const stuck = new BlockingTransport();
    const healthy = new RecordingTransport();
    // Short locks so the dead worker's job is seen as stalled within a second or two. A queue of its own:
    // workers of earlier tests (30 s stall checks) hold the queue's stall-check slot for 30 s.
    const locks = { lockDuration: 600, stalledInterval: 300 };
    const crashEnv = { ...env, QUEUE_PREFIX: `${redis.prefix}:crash` };
    const connection = createRedis(redis.url, log);
    const crashQueue = new Queue(NOTIFICATIONS_QUEUE, { connection, prefix: crashEnv.QUEUE_PREFIX });
    const queue = () => crashQueue;
    await withWorkers(async (started) => {
      const doomed = await startNotificationWorker(subgraph.db, crashEnv, log, { transport: stuck, ...locks });
      started.push(doomed);
      await queue().add('order-status', orderPayload(user.id, orderId, 'DELIVERED'), { jobId });
      await expect.poll(() => stuck.sent.length, { timeout: 10_000, interval: 20 }).toBe(1);
      // The crash: no more lock renewals, no completion; the job stays active with an expiring lock.
      await doomed.close(true);
      expect(await (await queue().getJob(jobId))!.getState()).toBe('active');

      started.push(await startNotificationWorker(subgraph.db, crashEnv, log, { transport: healthy, ...locks }));
      await waitForState(queue(), jobId, 'completed');
      expect(healthy.sent).toHaveLength(1);

      // A worker that was only frozen, not dead, finishes its send late: still one record.
      stuck.release();
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    await crashQueue.close();
    connection.disconnect();
    expect(await notificationCount(subgraph.db, jobId)).toBe(1);
    // Both sends carried the same Message-ID, so a mail receiver drops the repeat.
    expect(stuck.sent[0]!.messageId).toBe(healthy.sent[0]!.messageId);
  });

  it('stops cleanly: closing waits for the running job and takes no new ones', async () => {
    const user = shop.users[5]!;
    const slow = new BlockingTransport();
    const [firstOrder, secondOrder] = [randomUUID(), randomUUID()];
    const first = orderStatusJobId(firstOrder, 'PENDING');
    const second = orderStatusJobId(secondOrder, 'PENDING');
    const worker = await startNotificationWorker(subgraph.db, env, log, { transport: slow });
    await queue().add('order-status', orderPayload(user.id, firstOrder, 'PENDING'), { jobId: first });
    await expect.poll(() => slow.sent.length, { timeout: 10_000, interval: 20 }).toBe(1);

    let closed = false;
    const closing = worker.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(closed).toBe(false);
    slow.release();
    await closing;
    expect(await (await queue().getJob(first))!.getState()).toBe('completed');
    expect(await notificationCount(subgraph.db, first)).toBe(1);
    expect(worker.worker.isRunning()).toBe(false);

    await queue().add('order-status', orderPayload(user.id, secondOrder, 'PENDING'), { jobId: second });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await (await queue().getJob(second))!.getState()).toBe('waiting');
    await (await queue().getJob(second))!.remove();
  });

  it('sends the welcome job the outbox relays after createUser', async () => {
    const transport = new RecordingTransport();
    await withWorkers(async (started) => {
      started.push(await startNotificationWorker(subgraph.db, env, log, { transport }));
      const res = await fetch(subgraph.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: 'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }',
          variables: { input: { email: 'welcome@example.com', name: 'Wendy Welcome' } },
        }),
      });
      const body = (await res.json()) as { data: { createUser: { id: string } } };
      const jobId = welcomeJobId(body.data.createUser.id);
      await waitForState(queue(), jobId, 'completed');
      expect(await notificationCount(subgraph.db, jobId)).toBe(1);
    });
    expect(transport.sent.map((m) => [m.subject, m.to.email])).toEqual([['Welcome to the Shop, Wendy Welcome!', 'welcome@example.com']]);
    expect(transport.sent[0]!.text).toContain('Hi Wendy Welcome,');
  });
});
