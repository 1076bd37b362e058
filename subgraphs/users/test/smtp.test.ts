import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, demoShop } from '@shop/common';
import { createTestRedis, startTestSubgraph, type TestRedis, type TestSubgraph } from '@shop/common/testing';
import { orderStatusJobId } from '../src/notifications/jobs.js';
import { startNotificationWorker } from '../src/notifications/worker.js';
import type { UsersRuntime } from '../src/runtime.js';
import { users } from '../src/server.js';
import { notificationCount, orderPayload, waitForState } from './support.js';

/** Reply to the end of a message's DATA: accept it, or an SMTP error code. */
type Verdict = 'accept' | 451 | 550;

/**
 * A minimal SMTP server on a loopback port: enough of RFC 5321 for nodemailer (EHLO, MAIL, RCPT, DATA, RSET,
 * QUIT), with a verdict per message so tests can make the server fail for a while or for good.
 */
class TestSmtpServer {
  readonly messages: string[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private received = 0;

  constructor(private readonly verdict: (n: number) => Verdict) {
    this.server = createServer((socket) => this.session(socket));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (typeof address !== 'object' || !address) throw new Error('no address');
    return `smtp://127.0.0.1:${address.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private session(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.setEncoding('utf8');
    socket.write('220 test.example ESMTP\r\n');
    let buffer = '';
    let data: string[] | undefined;
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (data) {
          if (line !== '.') {
            data.push(line.startsWith('.') ? line.slice(1) : line);
            continue;
          }
          const verdict = this.verdict(this.received++);
          if (verdict === 'accept') {
            this.messages.push(data.join('\r\n'));
            socket.write('250 2.0.0 queued\r\n');
          } else {
            socket.write(verdict === 451 ? '451 4.3.0 try again later\r\n' : '550 5.1.1 mailbox unavailable\r\n');
          }
          data = undefined;
          continue;
        }
        const command = line.slice(0, 4).toUpperCase();
        if (command === 'EHLO') socket.write('250-test.example\r\n250 8BITMIME\r\n');
        else if (command === 'DATA') {
          data = [];
          socket.write('354 end with .\r\n');
        } else if (command === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 OK\r\n');
      }
    });
  }
}

const log = createLogger('smtp-test', 'silent');
const shop = demoShop();
let redis: TestRedis;
let subgraph: TestSubgraph & { runtime: UsersRuntime | undefined };
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  redis = await createTestRedis('smtp');
  env = { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix, NOTIFICATION_WORKER_IN_PROCESS: 'false', NOTIFICATION_BACKOFF_MS: '50' };
  subgraph = await startTestSubgraph(users, { seed: true, env });
});
afterAll(async () => {
  await subgraph?.close();
  await redis?.cleanup();
});

describe('SMTP transport', () => {
  it('retries a temporary refusal and sends with the Message-ID of the job', async () => {
    const smtp = new TestSmtpServer((n) => (n === 0 ? 451 : 'accept'));
    const url = await smtp.listen();
    const worker = await startNotificationWorker(subgraph.db, { ...env, SMTP_URL: url, SMTP_FROM: 'Shop <orders@shop.test>' }, log);
    const user = shop.users[7]!;
    const orderId = randomUUID();
    const jobId = orderStatusJobId(orderId, 'CONFIRMED');
    try {
      await subgraph.runtime!.queue.add('order-status', orderPayload(user.id, orderId, 'CONFIRMED'), { jobId });
      const job = await waitForState(subgraph.runtime!.queue, jobId, 'completed');
      expect(job.attemptsStarted).toBe(2);
    } finally {
      await worker.close();
      await smtp.close();
    }
    expect(smtp.messages).toHaveLength(1);
    const message = smtp.messages[0]!;
    // Long header lines are folded onto continuation lines: unfold them.
    const headers = message.slice(0, message.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ').split('\r\n');
    expect(headers).toContain(`Message-ID: <${jobId}@shop.test>`);
    expect(headers).toContain('From: Shop <orders@shop.test>');
    expect(headers).toContain(`To: ${user.name} <${user.email}>`);
    expect(headers).toContain(`Subject: Your order #${orderId.slice(0, 8).toUpperCase()} is confirmed`);
    expect(message).toContain('Total: $34.99');
    const [row] = await subgraph.db.query<{ transport: string; message_id: string }>(
      'SELECT transport, message_id FROM notifications WHERE job_id = $1',
      [jobId],
    );
    expect(row).toEqual({ transport: 'SMTP', message_id: `<${jobId}@shop.test>` });
  });

  it('fails for good when the server refuses the message permanently', async () => {
    const smtp = new TestSmtpServer(() => 550);
    const worker = await startNotificationWorker(subgraph.db, { ...env, SMTP_URL: await smtp.listen() }, log);
    const orderId = randomUUID();
    const jobId = orderStatusJobId(orderId, 'SHIPPED');
    try {
      await subgraph.runtime!.queue.add('order-status', orderPayload(shop.users[8]!.id, orderId, 'SHIPPED'), { jobId });
      const job = await waitForState(subgraph.runtime!.queue, jobId, 'failed');
      expect(job.attemptsStarted).toBe(1);
      expect(job.failedReason).toMatch(/mail server refused the message \(550\)/);
    } finally {
      await worker.close();
      await smtp.close();
    }
    expect(await notificationCount(subgraph.db, jobId)).toBe(0);
  });
});
