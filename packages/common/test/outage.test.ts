import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { EntityInvalidator, createLogger, createRedis } from '../src/index.js';
import { startPrivateRedis } from '../src/test-servers.js';

/** A logger whose lines the test reads. */
function capturingLogger() {
  const lines: { level: number; msg: string; failures?: number; downMs?: number }[] = [];
  const log = createLogger('outage-test', 'debug', {
    write(line: string) {
      lines.push(JSON.parse(line) as (typeof lines)[number]);
    },
  });
  return { log, warnings: () => lines.filter((line) => line.level >= 40) };
}

describe('a Redis outage in the logs', () => {
  it('is one warning when it goes and one when it is back, with the count, however many requests failed', async () => {
    const redis = await startPrivateRedis();
    const { log, warnings } = capturingLogger();
    const connection = createRedis(redis.url, log, { name: 'outage-test' });
    const invalidator = new EntityInvalidator('test', connection, 'outage-test', log);
    const queue = new Queue('outage', { connection, prefix: 'outage-test' });
    queue.on('error', () => undefined);
    try {
      await expect.poll(() => connection.status, { timeout: 10_000 }).toBe('ready');
      await invalidator.invalidate([{ typename: 'Order', id: 'a' }]);
      expect(warnings()).toEqual([]);

      await redis.kill();
      // Under load: every request's announcement fails while the connection keeps reconnecting.
      for (let i = 0; i < 50; i++) await invalidator.invalidate([{ typename: 'Order', id: String(i) }]);
      await sleep(1_500);
      expect(warnings().map((line) => line.msg)).toEqual([
        expect.stringContaining('is failing'),
        expect.stringContaining('is failing'),
      ]);

      await redis.start({ empty: true });
      await expect.poll(() => connection.status, { timeout: 10_000 }).toBe('ready');
      await invalidator.invalidate([{ typename: 'Order', id: 'back' }]);
      const back = warnings().filter((line) => line.msg.endsWith("is back"));
      expect(back).toHaveLength(2);
      const announcements = back.find((line) => line.msg.startsWith('entity cache invalidation'));
      expect(announcements?.failures).toBe(50);
      expect(announcements?.downMs).toBeGreaterThan(1_000);
      expect(warnings()).toHaveLength(4);
    } finally {
      await queue.close();
      connection.disconnect();
      await redis.stop();
    }
  });
});
