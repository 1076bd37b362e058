import { Queue } from 'bullmq';
import {
  EntityInvalidator,
  OutboxReconciler,
  OutboxRelay,
  TokenIssuer,
  createRedis,
  preparePasswordChecks,
  readJwtIssuerConfig,
  readReconcilerConfig,
  readString,
  type Database,
  type Logger,
  type SubgraphRuntime,
} from '@shop/common';
import { readNotificationProducerConfig } from './notifications/config.js';
import { NOTIFICATIONS_QUEUE, notificationJobOptions } from './notifications/jobs.js';
import { startNotificationWorker, type NotificationWorker } from './notifications/worker.js';

/** Background work of the users subgraph: relaying its outbox to the notifications queue. */
export interface UsersRuntime extends SubgraphRuntime {
  relay: OutboxRelay;
  /** Sends again the welcome notifications Redis lost. */
  reconciler: OutboxReconciler;
  queue: Queue;
  /** Present when the worker runs in this process (NOTIFICATION_WORKER_IN_PROCESS, the default on PGlite). */
  worker: NotificationWorker | undefined;
  /** Signs the access tokens `login` returns. */
  tokens: TokenIssuer;
  /** Announces the accounts createUser commits (the notification worker announces its own on its connection). */
  invalidator: EntityInvalidator;
}

export const JWKS_PATH = '/.well-known/jwks.json';

export async function startUsersRuntime(db: Database, env: NodeJS.ProcessEnv, log: Logger): Promise<UsersRuntime> {
  const config = readNotificationProducerConfig(env, db.kind === 'pglite');
  // Before anything connects: a production start without a signing key fails here.
  const tokens = await TokenIssuer.create(readJwtIssuerConfig(env, readString(env, 'NODE_ENV', 'development') === 'production'));
  // In the background: nothing waits for it, but logins soon find it ready.
  preparePasswordChecks().catch((error: unknown) => log.warn({ err: error }, 'could not prepare password checks'));
  const connection = createRedis(config.queue.redisUrl, log, { name: 'users-outbox' });
  const queue = new Queue(NOTIFICATIONS_QUEUE, {
    connection,
    prefix: config.queue.prefix,
    defaultJobOptions: notificationJobOptions(config.attempts, config.backoffMs),
  });
  // Redis outages are logged by the connection and retried by the relay; they must not crash the subgraph.
  queue.on('error', (error) => log.debug({ err: error }, 'notifications queue error'));
  const queues = { [NOTIFICATIONS_QUEUE]: queue };
  const relay = new OutboxRelay({ db, queues, log });
  relay.start();
  const reconciler = new OutboxReconciler({ service: 'users', db, queues, log, ...readReconcilerConfig(env) });
  reconciler.start();

  let worker: NotificationWorker | undefined;
  try {
    worker = config.workerInProcess ? await startNotificationWorker(db, env, log) : undefined;
  } catch (error) {
    await reconciler.stop();
    await relay.stop();
    await queue.close();
    connection.disconnect();
    throw error;
  }
  return {
    relay,
    reconciler,
    queue,
    worker,
    tokens,
    // Requests fail fast while Redis is away (the failure is logged); /ready reports the same connection.
    invalidator: new EntityInvalidator('users', connection, config.queue.prefix, log),
    readiness: { redis: () => connection.ping() },
    // The public key the router verifies tokens with (no keys when tokens are HS256).
    routes: (req, res) => {
      if (req.method !== 'GET' || req.url !== JWKS_PATH) return false;
      res.setHeader('content-type', 'application/json');
      res.setHeader('cache-control', 'public, max-age=300');
      res.end(JSON.stringify(tokens.jwks));
      return true;
    },
    async stop() {
      await worker?.close();
      await reconciler.stop();
      await relay.stop();
      await queue.close();
      connection.disconnect();
    },
  };
}
