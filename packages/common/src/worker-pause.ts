import type { Worker } from 'bullmq';
import type { Database } from './db.js';
import { isDatabaseUnavailable } from './database-unavailable.js';
import type { Logger } from './logger.js';

export interface DatabaseWatch {
  /** Whether the worker is paused now, waiting for the database. */
  readonly paused: boolean;
  /** Stops watching (the worker's close does it too); a paused worker stays paused. */
  stop(): void;
}

/**
 * Pauses a BullMQ worker while its database is down, so it does not take job after job only to fail each one
 * (and burn its attempts): the first job that fails with DatabaseUnavailableError pauses it, the database is
 * pinged every `checkEveryMs` (default 1 s), and the worker resumes once it answers. Jobs running when it paused
 * finish on their own (they fail and are retried with their backoff). One warning when pausing, one info line
 * with the time it was down when resuming.
 */
export function pauseWorkerWhileDatabaseDown(
  worker: Worker,
  db: Pick<Database, 'ping' | 'name'>,
  log: Logger,
  options: { checkEveryMs?: number } = {},
): DatabaseWatch {
  const checkEveryMs = options.checkEveryMs ?? 1_000;
  const database = db.name ?? 'database';
  let pausedAt: number | undefined;
  let pausing: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = () => {
    timer = setTimeout(() => void check(), checkEveryMs);
    timer.unref();
  };

  const check = async () => {
    timer = undefined;
    if (stopped) return;
    try {
      await db.ping();
      await pausing;
    } catch {
      if (!stopped) schedule();
      return;
    }
    if (stopped || pausedAt === undefined) return;
    const downMs = Math.round(performance.now() - pausedAt);
    pausedAt = undefined;
    // resume() reports its own failures as the worker's 'error' events.
    await worker.resume();
    log.info({ queue: worker.name, database, downMs }, 'database answers again: worker resumed');
  };

  const onFailed = (_job: unknown, error: Error) => {
    if (stopped || pausedAt !== undefined || !isDatabaseUnavailable(error)) return;
    pausedAt = performance.now();
    log.warn({ queue: worker.name, database, err: error }, 'database unavailable: worker paused until it answers');
    // Not waiting for the running jobs: they fail on their own against the database that is down.
    pausing = worker.pause(true).catch((pauseError: unknown) => log.warn({ err: pauseError }, 'could not pause the worker'));
    schedule();
  };

  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    worker.off('failed', onFailed);
    worker.off('closing', stop);
  };
  worker.on('failed', onFailed);
  worker.on('closing', stop);
  return {
    get paused() {
      return pausedAt !== undefined;
    },
    stop,
  };
}
