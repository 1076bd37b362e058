import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/** JSON logs on stdout, one logger per process, named after the service. */
export function createLogger(service: string, level: LogLevel): Logger {
  return pino({ name: service, level, base: { service } });
}
