import { AsyncLocalStorage } from 'node:async_hooks';
import { ROOT_CONTEXT, context as traceContext } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';
import { logFormat, prettyDestination } from './pretty-log.js';

export type { Logger };

/** What every log line written while handling one request or job carries. */
export interface LogContext {
  requestId?: string;
  /** Present when tracing is on: the trace the line belongs to. */
  traceId?: string;
  jobId?: string;
  queue?: string;
}

const logContext = new AsyncLocalStorage<LogContext>();

/** Runs fn with `context` added to every line any createLogger logger writes meanwhile, however deep. */
export function runWithLogContext<T>(context: LogContext, fn: () => T): T {
  return logContext.run(context, fn);
}

/** The context of the request or job being handled, if any (mutable: e.g. the trace id is added later). */
export function currentLogContext(): LogContext | undefined {
  return logContext.getStore();
}

/** The request id of the request being handled, or of the request a job was queued by. */
export function currentRequestId(): string | undefined {
  return logContext.getStore()?.requestId;
}

/**
 * Runs fn outside any request or job: for background work a request merely starts (the outbox relay),
 * whose timers would otherwise log and trace under that request for the rest of the process's life.
 */
export function runOutsideRequest<T>(fn: () => T): T {
  return logContext.exit(() => traceContext.with(ROOT_CONTEXT, fn));
}

// A copy: pino merges the line's own fields into what the mixin returns.
const contextMixin = (): object => {
  const store = logContext.getStore();
  return store ? { ...store } : {};
};

/** True when `log` adds the request context by itself (so a child binding would repeat the field). */
export function hasLogContext(log: Logger): boolean {
  return (log as unknown as Record<symbol, unknown>)[pino.symbols.mixinSym] === contextMixin;
}

/**
 * Logs on stdout (or `destination`), one logger per process, named after the service: JSON lines, or pretty-printed
 * on a terminal in development (see `logFormat`).
 */
export function createLogger(service: string, level: LogLevel, destination?: DestinationStream): Logger {
  const options = { name: service, level, base: { service }, mixin: contextMixin };
  if (destination) return pino(options, destination);
  return logFormat() === 'pretty' ? pino(options, prettyDestination()) : pino(options);
}
