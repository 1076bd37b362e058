import type { Redis } from 'ioredis';
import { OutageLog, type Logger } from '@shop/common';

/**
 * Apollo Server's persisted-query cache in Redis, shared by every router
 * replica: a query registered through one is found by the others. Redis
 * errors count as misses (the client then sends the full query), so an outage
 * slows clients down but never fails them.
 */
export class RedisQueryCache {
  private readonly outage: OutageLog;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    log: Logger,
  ) {
    this.outage = new OutageLog(log, 'persisted query cache in Redis (misses meanwhile)');
  }

  async get(key: string): Promise<string | undefined> {
    try {
      const value = (await this.redis.get(this.prefix + key)) ?? undefined;
      this.outage.succeeded();
      return value;
    } catch (error) {
      this.outage.failed(error);
      return undefined;
    }
  }

  async set(key: string, value: string, options?: { ttl?: number | null }): Promise<void> {
    try {
      if (options?.ttl) await this.redis.set(this.prefix + key, value, 'EX', options.ttl);
      else await this.redis.set(this.prefix + key, value);
    } catch (error) {
      this.outage.failed(error);
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      return (await this.redis.del(this.prefix + key)) > 0;
    } catch {
      return false;
    }
  }
}
