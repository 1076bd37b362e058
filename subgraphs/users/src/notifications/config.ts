import {
  readBool,
  readInt,
  readLogLevel,
  readOptional,
  readPort,
  readQueueConfig,
  readString,
  readUrl,
  ConfigError,
  type LogLevel,
  type QueueConfig,
} from '@shop/common';

export const DEFAULT_SMTP_FROM = 'Shop <no-reply@shop.example>';

/** Settings of the notification worker, from the environment. */
export interface NotificationWorkerConfig {
  queue: QueueConfig;
  /** Jobs one worker process runs at once (NOTIFICATION_CONCURRENCY). */
  concurrency: number;
  /** SMTP_URL; without it the local transport records messages without sending them. */
  smtpUrl: string | undefined;
  /** SMTP_FROM: sender of every message, also the domain of the Message-IDs. */
  smtpFrom: string;
}

export function readNotificationWorkerConfig(env: NodeJS.ProcessEnv): NotificationWorkerConfig {
  return {
    queue: readQueueConfig(env),
    concurrency: readInt(env, 'NOTIFICATION_CONCURRENCY', 10, 1, 1_000),
    smtpUrl: readUrl(env, 'SMTP_URL', ['smtp:', 'smtps:']),
    smtpFrom: readOptional(env, 'SMTP_FROM') ?? DEFAULT_SMTP_FROM,
  };
}

/** Settings of the users runtime's producer side: the queue the outbox relays to. */
export interface NotificationProducerConfig {
  queue: QueueConfig;
  /** NOTIFICATION_ATTEMPTS: tries per job before it stays failed (the dead letter). */
  attempts: number;
  /** NOTIFICATION_BACKOFF_MS: first retry delay; each next one doubles. */
  backoffMs: number;
  /**
   * NOTIFICATION_WORKER_IN_PROCESS: run the worker inside the users subgraph. Defaults to true on embedded
   * PGlite, which one process owns, so a separate worker process could not open the users database.
   */
  workerInProcess: boolean;
}

export function readNotificationProducerConfig(env: NodeJS.ProcessEnv, embeddedDatabase: boolean): NotificationProducerConfig {
  return {
    queue: readQueueConfig(env),
    attempts: readInt(env, 'NOTIFICATION_ATTEMPTS', 5, 1, 100),
    backoffMs: readInt(env, 'NOTIFICATION_BACKOFF_MS', 1_000, 1, 3_600_000),
    workerInProcess: readBool(env, 'NOTIFICATION_WORKER_IN_PROCESS', embeddedDatabase),
  };
}

/**
 * Where the worker process answers /health, /ready and /metrics by default in production (a container of its own):
 * beside the dashboard's 4005. Elsewhere a free port (logged), so that several workers run side by side on one machine.
 */
export const WORKER_DEFAULT_PORT = 4006;

/** What worker-main needs beyond the worker's own settings. */
export interface WorkerProcessConfig {
  /** USERS_DATABASE_URL; undefined only in development, where the users subgraph runs the worker itself. */
  databaseUrl: string | undefined;
  logLevel: LogLevel;
  /** HOST and PORT of the probes' HTTP server (0.0.0.0:4006 in production, for the kubelet; loopback and a free port otherwise). */
  host: string;
  port: number;
  worker: NotificationWorkerConfig;
}

export function readWorkerProcessConfig(env: NodeJS.ProcessEnv): WorkerProcessConfig {
  const databaseUrl = readUrl(env, 'USERS_DATABASE_URL', ['postgres:', 'postgresql:']);
  const production = readString(env, 'NODE_ENV', 'development') === 'production';
  if (!databaseUrl && production) {
    throw new ConfigError('USERS_DATABASE_URL is required: the worker reads users and records notifications in the users database');
  }
  return {
    databaseUrl,
    logLevel: readLogLevel(env),
    host: readString(env, 'HOST', production ? '0.0.0.0' : '127.0.0.1'),
    port: readPort(env, 'PORT', production ? WORKER_DEFAULT_PORT : 0),
    worker: readNotificationWorkerConfig(env),
  };
}
