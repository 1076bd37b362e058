import type { DefaultJobOptions, Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { runWithLogContext, type LogContext, type Logger } from './logger.js';
import { tracer, tracingEnabled } from './telemetry.js';

/** Every BullMQ queue of the shop, by what it carries. */
export const QUEUES = {
  /** `reserve` and `release` jobs from orders, for inventory. */
  reservations: 'inventory-reservations',
  /** `reserved` and `rejected` jobs from inventory, for orders. */
  reservationResults: 'order-reservation-results',
  /** One job per user-facing event, for the notification worker. */
  notifications: 'notifications',
} as const;

/**
 * Saga jobs retry with exponential backoff for transient failures. Completed jobs stay a week so their
 * ids keep deduplicating a repeated relay; failed jobs stay until someone looks at them.
 */
export const SAGA_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 7 * 24 * 3600 },
};

/** Logs at most one message every 10 s: queues and workers report one connection error many times a second. */
export function throttledWarn(log: Logger, message: string): (error: Error) => void {
  let last = 0;
  return (error) => {
    if (Date.now() - last < 10_000) return;
    last = Date.now();
    log.warn({ err: error }, message);
  };
}

/**
 * Lets the current jobs finish when Redis is there to record them; when it is not, waiting would never
 * end, so the worker stops at once and its jobs come back as stalled to another worker. Jobs still running
 * after `graceMs` are left the same way, so a stop is bounded (their handlers keep running until the process exits).
 */
export async function closeWorker(worker: Worker, connection: Redis, graceMs = 30_000): Promise<void> {
  if (connection.status !== 'ready') {
    await worker.close(true);
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
  });
  await Promise.race([worker.close(), late]);
  clearTimeout(timer);
}

/**
 * Wraps a BullMQ processor so that every line logged while a job runs names the job and its queue, and
 * the request that queued it when the payload carries its `requestId`; with tracing on, each job is a span.
 * With `log`, a finished job leaves a debug line (failures are the worker's `failed` listener's to log).
 */
export function withJobContext<T>(processor: (job: Job) => Promise<T>, log?: Logger): (job: Job) => Promise<T> {
  return (job) => {
    const data: unknown = job.data;
    const requestId = typeof data === 'object' && data !== null ? (data as Record<string, unknown>).requestId : undefined;
    const logContext: LogContext = {
      ...(typeof requestId === 'string' ? { requestId } : {}),
      ...(job.id ? { jobId: job.id } : {}),
      queue: job.queueName,
    };
    return runWithLogContext(logContext, async () => {
      const started = performance.now();
      const span = tracingEnabled()
        ? tracer().startSpan(
            `process ${job.queueName}`,
            {
              kind: SpanKind.CONSUMER,
              attributes: {
                'messaging.system': 'bullmq',
                'messaging.operation.type': 'process',
                'messaging.destination.name': job.queueName,
                ...(job.id ? { 'messaging.message.id': job.id } : {}),
              },
            },
            ROOT_CONTEXT,
          )
        : undefined;
      if (span) logContext.traceId = span.spanContext().traceId;
      try {
        const value = await (span ? context.with(trace.setSpan(ROOT_CONTEXT, span), () => processor(job)) : processor(job));
        log?.debug({ name: job.name, ms: Math.round((performance.now() - started) * 10) / 10 }, 'job done');
        return value;
      } catch (error) {
        span?.recordException(error instanceof Error ? error : String(error));
        span?.setStatus({ code: SpanStatusCode.ERROR });
        throw error;
      } finally {
        span?.end();
      }
    });
  };
}
