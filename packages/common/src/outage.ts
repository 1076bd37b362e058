import type { Logger } from './logger.js';

/**
 * Logs a dependency's outage as two lines: a warning when the first failure comes, with its error, and one when it
 * is back, with how long it was away and how many operations failed meanwhile. Failures in between are only counted,
 * so an outage under load does not write a stack trace per request.
 */
export class OutageLog {
  private since: number | undefined;
  private failures = 0;

  constructor(
    private readonly log: Logger,
    /** What failed, as the lines name it (e.g. "redis (orders-producer)"). */
    private readonly what: string,
  ) {}

  get down(): boolean {
    return this.since !== undefined;
  }

  failed(error: unknown): void {
    this.failures++;
    if (this.since !== undefined) return;
    this.since = Date.now();
    this.log.warn({ err: error }, `${this.what} is failing; retried quietly until it answers again`);
  }

  succeeded(): void {
    if (this.since === undefined) return;
    this.log.warn({ downMs: Date.now() - this.since, failures: this.failures }, `${this.what} is back`);
    this.since = undefined;
    this.failures = 0;
  }
}
