import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.js';
import { OutageLog } from './outage.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * A Redis connection that never crashes its process: errors are logged and
 * ioredis reconnects. `blocking` connections (BullMQ workers, pub/sub
 * subscribers) wait for Redis forever instead of failing commands.
 */
export function createRedis(url: string, log: Logger, options: { blocking?: boolean; name?: string } = {}): Redis {
  const redisOptions: RedisOptions = {
    connectionName: options.name,
    maxRetriesPerRequest: options.blocking ? null : 2,
    // Commands issued while disconnected fail fast for producers, so callers (the outbox) can retry later.
    enableOfflineQueue: options.blocking ?? false,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5_000),
  };
  const redis = new Redis(url, redisOptions);
  // Reconnect attempts fail many times a second while Redis is down: one line when it goes, one when it is back.
  const outage = new OutageLog(log, `redis connection${options.name ? ` ${options.name}` : ''}`);
  redis.on('error', (error: Error) => outage.failed(error));
  redis.on('ready', () => outage.succeeded());
  return redis;
}
