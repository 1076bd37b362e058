import { randomUUID } from 'node:crypto';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { EntityInvalidator, closeWorker, createRedis, pauseWorkerWhileDatabaseDown, withJobContext, type Database, type Logger } from '@shop/common';
import { notificationTarget, recordNotification } from '../db.js';
import { readNotificationWorkerConfig, type NotificationWorkerConfig } from './config.js';
import { InvalidNotificationJob, NOTIFICATIONS_QUEUE, parseNotificationJob } from './jobs.js';
import { renderNotification } from './templates.js';
import { LocalTransport, SmtpTransport, messageIdFor, type Transport } from './transport.js';

/** The job names a user that does not exist: no retry can find them. */
export class UnknownRecipient extends UnrecoverableError {}

export interface NotificationResult {
  /** False when an earlier run of the same job id had already delivered it. */
  delivered: boolean;
}

/**
 * Processes one notification job. Delivery is idempotent by job id: a job run
 * again (a worker died after sending, BullMQ forgot the job and it was added
 * again) finds its row and sends nothing; two runs racing record one row.
 * Once the row is there, the user's User.notifications changed: that is
 * announced to the router's entity cache ahead of the job's completion, again by a
 * repeated run (the first may have recorded and died before announcing).
 */
export function notificationProcessor(
  db: Database,
  transport: Transport,
  from: string,
  invalidator: Pick<EntityInvalidator, 'sendNow'>,
) {
  return async (job: Job): Promise<NotificationResult> => {
    const jobId = job.id;
    if (!jobId) throw new InvalidNotificationJob('job has no id');
    const request = parseNotificationJob(job.name, job.data);
    // Written on the worker's connection before the job's completion, which Redis then runs after it.
    const announce = () => invalidator.sendNow([{ typename: 'User', id: request.userId }]);
    const target = await notificationTarget(db, jobId, request.userId);
    if (target.recorded) {
      announce();
      return { delivered: false };
    }
    const user = target.user;
    if (!user) throw new UnknownRecipient(`user ${request.userId} does not exist`);
    const rendered = renderNotification(request, user);
    const messageId = messageIdFor(jobId, from);
    await transport.send({ jobId, messageId, to: { name: user.name, email: user.email }, ...rendered });
    const isNew = await recordNotification(db, {
      id: randomUUID(),
      jobId,
      userId: user.id,
      kind: rendered.kind,
      recipient: user.email,
      subject: rendered.subject,
      text: rendered.text,
      html: rendered.html,
      transport: transport.name,
      messageId,
    });
    announce();
    return { delivered: isNew };
  };
}

export interface NotificationWorkerOptions {
  /** Settings already read from the environment (by worker-main); otherwise they are read from `env`. */
  config?: NotificationWorkerConfig;
  /** Replaces the transport chosen from SMTP_URL (tests inject failing or blocking ones); the caller closes it. */
  transport?: Transport;
  concurrency?: number;
  /** BullMQ lock and stall settings; tests shorten them to see a crashed worker's job taken over quickly. */
  lockDuration?: number;
  stalledInterval?: number;
  maxStalledCount?: number;
}

export interface NotificationWorker {
  readonly worker: Worker;
  readonly transport: Transport;
  /**
   * Stops taking jobs and waits for the running ones to finish (up to 30 s, and not at all while Redis is away), then
   * closes Redis and the transport it opened; the database stays open. `force` does not wait: running jobs are
   * taken over by another worker once their lock expires.
   */
  close(force?: boolean): Promise<void>;
}

/** Starts consuming the notifications queue in this process; resolves once connected to Redis. */
export async function startNotificationWorker(
  db: Database,
  env: NodeJS.ProcessEnv,
  log: Logger,
  options: NotificationWorkerOptions = {},
): Promise<NotificationWorker> {
  const config = options.config ?? readNotificationWorkerConfig(env);
  const concurrency = options.concurrency ?? config.concurrency;
  const ownTransport = options.transport
    ? undefined
    : config.smtpUrl
      ? new SmtpTransport({ url: config.smtpUrl, from: config.smtpFrom, maxConnections: concurrency })
      : new LocalTransport(log);
  const transport = options.transport ?? ownTransport!;
  const connection = createRedis(config.queue.redisUrl, log, { blocking: true, name: 'notifications-worker' });
  // On the worker's connection, which holds commands while Redis is away instead of failing them and runs them in
  // order: a job's completion reaches Redis after the announcement of the notification it recorded, even across an
  // outage.
  const invalidator = new EntityInvalidator('users', connection, config.queue.prefix, log);
  const processor = notificationProcessor(db, transport, config.smtpFrom, invalidator);

  const worker = new Worker(NOTIFICATIONS_QUEUE, withJobContext(processor, log), {
    connection,
    prefix: config.queue.prefix,
    concurrency,
    // Fallbacks for jobs added without these options: keep completed jobs a day, failed ones until handled.
    removeOnComplete: { age: 86_400, count: 10_000 },
    ...(options.lockDuration === undefined ? {} : { lockDuration: options.lockDuration }),
    ...(options.stalledInterval === undefined ? {} : { stalledInterval: options.stalledInterval }),
    ...(options.maxStalledCount === undefined ? {} : { maxStalledCount: options.maxStalledCount }),
  });
  worker.on('error', (error) => log.error({ err: error }, 'notification worker error'));
  worker.on('failed', (job, error) => {
    if (!job) return;
    const final = error instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    const details = { jobId: job.id, name: job.name, attempt: job.attemptsMade, err: error };
    if (final) log.error(details, 'notification failed for good; it stays in the failed set until retried');
    else log.warn(details, 'notification failed; will retry');
  });
  // While the users database is down the worker waits instead of failing job after job.
  const databaseWatch = pauseWorkerWhileDatabaseDown(worker, db, log);
  worker.on('completed', (job, result: NotificationResult) =>
    log.debug({ jobId: job.id, name: job.name, delivered: result.delivered }, 'notification done'),
  );

  try {
    await worker.waitUntilReady();
  } catch (error) {
    databaseWatch.stop();
    await worker.close(true).catch(() => undefined);
    connection.disconnect();
    await ownTransport?.close();
    throw error;
  }
  log.info(
    { queue: NOTIFICATIONS_QUEUE, prefix: config.queue.prefix, concurrency, transport: transport.name },
    'notification worker started',
  );

  let closing: Promise<void> | undefined;
  return {
    worker,
    transport,
    close(force = false) {
      closing ??= (async () => {
        databaseWatch.stop();
        // Without Redis the running jobs could never be recorded: closeWorker stops at once then (another worker takes
        // them over), and bounds the wait otherwise.
        await (force ? worker.close(true) : closeWorker(worker, connection));
        connection.disconnect();
        await ownTransport?.close();
      })();
      return closing;
    },
  };
}
