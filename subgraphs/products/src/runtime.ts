import { EntityInvalidator, createRedis, readQueueConfig, type Database, type Logger, type SubgraphRuntime } from '@shop/common';

/** The products runtime: no background work, only the Redis connection that announces catalog changes. */
export interface ProductsRuntime extends SubgraphRuntime {
  invalidator: EntityInvalidator;
}

export async function startProductsRuntime(_db: Database, env: NodeJS.ProcessEnv, log: Logger): Promise<ProductsRuntime> {
  const { redisUrl, prefix } = readQueueConfig(env);
  const redis = createRedis(redisUrl, log, { name: 'products-invalidator' });
  return {
    invalidator: new EntityInvalidator('products', redis, prefix, log),
    // The router caches this subgraph's products only while their changes reach Redis.
    readiness: { redis: () => redis.ping() },
    async stop() {
      redis.disconnect();
    },
  };
}
