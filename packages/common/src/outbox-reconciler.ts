import type { Queue } from 'bullmq';
import { readInt } from './config.js';
import type { Database } from './db.js';
import { runOutsideRequest, type Logger } from './logger.js';
import { outboxChecked, outboxResent } from './metrics.js';
import { OutageLog } from './outage.js';

/**
 * Confirms that every job the outbox handed to Redis took effect, and sends again what Redis lost.
 *
 * A BullMQ job completes only after its consumer committed what it does (a reservation, a status change, a recorded
 * notification), so "completed" in Redis proves the effect. A relayed job that Redis no longer knows at all was lost
 * with Redis's data (a restart without persistence, a failover to a lagging replica, a flush): it is added again under
 * the same job id, and its consumer, idempotent by that id, does the work once. Jobs still waiting or running are
 * looked at again later; failed ones are the dead letter, left for an operator (and confirmed if a retry completes).
 *
 * Each round claims due rows with `FOR UPDATE SKIP LOCKED` and pushes their next check forward in the same
 * statement, so replicas share the work without looking at a row twice, and no transaction stays open while Redis
 * is asked. A replica that dies mid-round leaves its rows to be checked again after `ageMs`.
 */
export interface OutboxReconcilerOptions {
  /** The service whose outbox this is (metrics label). */
  service: string;
  db: Database;
  /** The queues the relay sends to, by name. */
  queues: Record<string, Queue>;
  log: Logger;
  /** Time between rounds; the first runs at start. */
  intervalMs: number;
  /** How long after its hand-over a job is first checked, and between checks of a job not finished yet. */
  ageMs: number;
  /** Rows per claim; a round claims until none are due. */
  batchSize?: number;
}

/** The reconciler's settings, from OUTBOX_RECONCILE_INTERVAL_MS and OUTBOX_RECONCILE_AGE_MS. */
export interface ReconcilerConfig {
  intervalMs: number;
  ageMs: number;
}

export function readReconcilerConfig(env: NodeJS.ProcessEnv): ReconcilerConfig {
  return {
    intervalMs: readInt(env, 'OUTBOX_RECONCILE_INTERVAL_MS', 10_000, 100, 3_600_000),
    ageMs: readInt(env, 'OUTBOX_RECONCILE_AGE_MS', 15_000, 100, 86_400_000),
  };
}

interface DueRow {
  id: string;
  target: string;
  name: string;
  key: string;
  payload: unknown;
}

/** What one round found, for logs and tests. */
export interface ReconcileRound {
  checked: number;
  confirmed: number;
  resent: number;
}

export class OutboxReconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private readonly outage: OutageLog;

  constructor(private readonly options: OutboxReconcilerOptions) {
    this.outage = new OutageLog(options.log, 'outbox reconciliation');
  }

  /** Runs a round now and then every intervalMs. */
  start(): void {
    this.stopped = false;
    runOutsideRequest(() => this.tick());
  }

  private tick(): void {
    if (this.stopped) return;
    this.running = this.reconcile()
      .then(
        (round) => {
          this.outage.succeeded();
          if (round.resent > 0) this.options.log.warn(round, 'outbox reconciliation sent lost jobs again');
        },
        (error: unknown) => this.outage.failed(error),
      )
      .finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(() => this.tick(), this.options.intervalMs);
      });
  }

  /** One round: checks every due row, confirms the completed, sends the lost again. */
  async reconcile(): Promise<ReconcileRound> {
    const round: ReconcileRound = { checked: 0, confirmed: 0, resent: 0 };
    const batchSize = this.options.batchSize ?? 200;
    for (;;) {
      const rows = await this.claim(batchSize);
      if (rows.length === 0) return round;
      const { confirmed, resent } = await this.check(rows);
      round.checked += rows.length;
      round.confirmed += confirmed;
      round.resent += resent;
      if (rows.length < batchSize || this.stopped) return round;
    }
  }

  /**
   * Claims the due rows: relayed jobs not confirmed, older than ageMs, whose next check has come. Their next check
   * moves ageMs ahead in the same statement.
   */
  private claim(limit: number): Promise<DueRow[]> {
    return this.options.db.query<DueRow>(
      `UPDATE outbox SET check_after = now() + make_interval(secs => $1)
       WHERE id IN (
         SELECT id FROM outbox
         WHERE relayed_at IS NOT NULL AND confirmed_at IS NULL AND kind = 'job'
           AND relayed_at < now() - make_interval(secs => $1)
           AND (check_after IS NULL OR check_after <= now())
         ORDER BY relayed_at LIMIT $2 FOR UPDATE SKIP LOCKED
       )
       RETURNING id::text AS id, target, name, key, payload`,
      [this.options.ageMs / 1000, limit],
    );
  }

  private async check(rows: readonly DueRow[]): Promise<{ confirmed: number; resent: number }> {
    const { queues, service } = this.options;
    // One script call per job, all sent at once on the queue's connection.
    const states = await Promise.all(
      rows.map((row) => {
        const queue = queues[row.target];
        return queue ? queue.getJobState(row.key) : Promise.resolve('no-queue' as const);
      }),
    );
    const confirmed: string[] = [];
    const lost = new Map<Queue, DueRow[]>();
    for (const [i, row] of rows.entries()) {
      const state = states[i]!;
      outboxChecked.inc({ service, state });
      if (state === 'completed') confirmed.push(row.id);
      else if (state === 'unknown') {
        const queue = queues[row.target]!;
        const list = lost.get(queue) ?? [];
        list.push(row);
        lost.set(queue, list);
      } else if (state === 'no-queue') {
        this.options.log.warn({ id: row.id, queue: row.target }, 'outbox row targets a queue this service does not know');
      }
    }
    // Under the same job id: if another replica re-added it a moment ago, this add is a no-op.
    await Promise.all(
      [...lost].map(([queue, list]) =>
        queue.addBulk(list.map((row) => ({ name: row.name, data: row.payload, opts: { jobId: row.key } }))),
      ),
    );
    const resentIds = [...lost.values()].flat().map((row) => row.id);
    for (const row of [...lost.values()].flat()) outboxResent.inc({ service, queue: row.target, job: row.name });
    if (confirmed.length > 0 || resentIds.length > 0) {
      await this.options.db.query(
        `UPDATE outbox SET
           confirmed_at = CASE WHEN id = ANY($1::bigint[]) THEN now() ELSE confirmed_at END,
           attempts = attempts + CASE WHEN id = ANY($2::bigint[]) THEN 1 ELSE 0 END
         WHERE id = ANY($1::bigint[]) OR id = ANY($2::bigint[])`,
        [confirmed, resentIds],
      );
    }
    return { confirmed: confirmed.length, resent: resentIds.length };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
