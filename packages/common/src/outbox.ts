import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Database, Queryable } from './db.js';
import { runOutsideRequest, type Logger } from './logger.js';
import { OutageLog } from './outage.js';

/**
 * Transactional outbox. A state change and the messages it causes are written
 * in one database transaction; the relay then hands them to BullMQ (jobs, with
 * idempotent job ids) or Redis pub/sub (events). If Redis is down the rows wait
 * and are relayed when it is back: late, never lost. A row is marked relayed
 * only after Redis accepted it, so a crash between the two sends it again, and
 * the job id makes the repeat a no-op.
 *
 * Each database that uses it has this table (see the subgraph's migrations):
 *   outbox (id bigserial PRIMARY KEY, kind text, target text, name text, key text,
 *           payload jsonb, created_at timestamptz, relayed_at timestamptz, attempts int, last_error text,
 *           confirmed_at timestamptz, check_after timestamptz, failed_at timestamptz)
 * A relayed job stays unconfirmed until OutboxReconciler sees it completed; an event is confirmed when relayed.
 * A row that cannot be delivered (a queue or channel this relay does not know) gets `failed_at` and `last_error`
 * and is skipped from then on: one bad row never holds up the rows behind it.
 */
export const OUTBOX_TABLE_SQL = `CREATE TABLE outbox (
  id bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('job', 'event')),
  target text NOT NULL,
  name text NOT NULL,
  key text NOT NULL,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  relayed_at timestamptz,
  attempts int NOT NULL DEFAULT 0,
  last_error text,
  confirmed_at timestamptz,
  check_after timestamptz,
  failed_at timestamptz
)`;

export type OutboxMessage =
  /** A BullMQ job on queue `queue`; `jobId` makes a repeated add a no-op. */
  | { kind: 'job'; queue: string; name: string; jobId: string; payload: unknown }
  /** A Redis pub/sub message on `channel`. */
  | { kind: 'event'; channel: string; name: string; key: string; payload: unknown };

/** The outbox columns a message fills. */
export interface OutboxColumns {
  kind: OutboxMessage['kind'];
  target: string;
  name: string;
  key: string;
  payload: unknown;
}

/**
 * A message as the outbox row enqueueOutbox writes, for a statement that inserts outbox rows itself (in a
 * data-modifying CTE beside the state change, say) and passes them as one JSON parameter the same way.
 */
export function outboxColumns(m: OutboxMessage): OutboxColumns {
  return {
    kind: m.kind,
    target: m.kind === 'job' ? m.queue : m.channel,
    name: m.name,
    key: m.kind === 'job' ? m.jobId : m.key,
    payload: m.payload,
  };
}

/** Writes messages in the caller's transaction. */
export async function enqueueOutbox(tx: Queryable, messages: readonly OutboxMessage[]): Promise<void> {
  if (messages.length === 0) return;
  // One JSON parameter rather than an array per column: the driver would escape every character of every payload
  // into a text[] literal, a noticeable cost per status change.
  const rows = messages.map(outboxColumns);
  await tx.query(
    `INSERT INTO outbox (kind, target, name, key, payload)
     SELECT kind, target, name, key, payload
     FROM jsonb_to_recordset($1::jsonb) AS m(kind text, target text, name text, key text, payload jsonb)`,
    [JSON.stringify(rows)],
  );
}

interface OutboxRow {
  id: string;
  kind: 'job' | 'event';
  target: string;
  name: string;
  key: string;
  payload: unknown;
}

export interface OutboxRelayOptions {
  db: Database;
  /** Queues by name, for `job` messages. */
  queues: Record<string, Queue>;
  /** Publishing connection, for `event` messages. */
  publisher?: Redis;
  log: Logger;
  /** Poll interval when nothing wakes the relay. */
  intervalMs?: number;
  /**
   * Least time between the starts of two relay rounds (default 10 ms). A wake sooner than that waits for the rest,
   * so under a stream of commits one round relays the rows of several (one transaction and one Redis round trip
   * instead of one each); a wake after a quiet spell relays at once.
   */
  minIntervalMs?: number;
  batchSize?: number;
  /** How long one hand-over to Redis may take; BullMQ waits for a connection rather than failing. */
  sendTimeoutMs?: number;
  /** How long relayed rows are kept (for inspection) before they are deleted; default 7 days. */
  retentionMs?: number;
}

const PRUNE_EVERY_MS = 3_600_000;
const PRUNE_BATCH = 1_000;

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 1_000);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms (is Redis reachable?)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** When the last round started (performance.now()), and whether a wake is already waiting for minIntervalMs. */
  private lastStart = -Infinity;
  private dueSoon = false;
  private failures = 0;
  private lastPrune = 0;

  private readonly outage: OutageLog;

  constructor(private readonly options: OutboxRelayOptions) {
    this.outage = new OutageLog(options.log, 'outbox relay');
  }

  start(): void {
    this.stopped = false;
    this.wake();
  }

  /** Relays now (call after committing outbox rows) instead of at the next poll. */
  wake(): void {
    // The relay's own work, not the request's or job's that woke it: its timers would carry that context on.
    runOutsideRequest(() => this.wakeNow());
  }

  private wakeNow(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    const wait = this.lastStart + (this.options.minIntervalMs ?? 10) - performance.now();
    if (wait > 0) {
      if (this.dueSoon) return;
      clearTimeout(this.timer);
      this.dueSoon = true;
      this.timer = setTimeout(() => {
        // A timer may fire a little early: the wake then waits again for the rest.
        this.dueSoon = false;
        this.wake();
      }, wait);
      return;
    }
    clearTimeout(this.timer);
    this.dueSoon = false;
    this.lastStart = performance.now();
    this.running = this.drain().then(() => this.pruneNowAndThen()).finally(() => {
      this.running = undefined;
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        this.wake();
        return;
      }
      // Back off while Redis is failing: 0.5 s, 1 s, 2 s ... up to 10 s.
      const delay = this.failures === 0 ? (this.options.intervalMs ?? 1_000) : Math.min(500 * 2 ** (this.failures - 1), 10_000);
      this.timer = setTimeout(() => this.wake(), delay);
    });
  }

  /** Prunes at most once an hour, so relayed rows do not pile up; a failure waits for the next turn. */
  private async pruneNowAndThen(): Promise<void> {
    if (Date.now() - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = Date.now();
    try {
      const deleted = await this.prune();
      if (deleted > 0) this.options.log.info({ deleted }, 'pruned relayed outbox rows');
    } catch (error) {
      this.options.log.warn({ err: error }, 'outbox prune failed; will retry later');
    }
  }

  /** Deletes rows relayed longer ago than the retention, in small batches so no lock is held for long. */
  async prune(): Promise<number> {
    const seconds = (this.options.retentionMs ?? 7 * 86_400_000) / 1000;
    let deleted = 0;
    for (;;) {
      const rows = await this.options.db.query<{ id: string }>(
        `DELETE FROM outbox WHERE id IN (
           SELECT id FROM outbox WHERE relayed_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2
         ) RETURNING id::text AS id`,
        [seconds, PRUNE_BATCH],
      );
      deleted += rows.length;
      if (rows.length < PRUNE_BATCH) return deleted;
    }
  }

  /** Relays until the outbox is empty or Redis fails; returns how many messages went out. */
  async drain(): Promise<number> {
    let relayed = 0;
    for (;;) {
      let batch: number;
      try {
        batch = await this.relayBatch();
        this.failures = 0;
        this.outage.succeeded();
      } catch (error) {
        this.failures++;
        this.outage.failed(error);
        return relayed;
      }
      relayed += batch;
      if (batch < (this.options.batchSize ?? 100)) return relayed;
    }
  }

  /** Waits (up to the send timeout) until every Redis connection the relay writes to is connected. */
  private async connected(timeoutMs: number): Promise<void> {
    const connections = [
      ...Object.values(this.options.queues).map((queue) => queue.opts.connection as unknown as Redis),
      ...(this.options.publisher ? [this.options.publisher] : []),
    ].filter((c) => typeof c?.status === 'string' && c.status !== 'ready');
    if (connections.length === 0) return;
    await Promise.all(
      connections.map(
        (connection) =>
          new Promise<void>((resolve, reject) => {
            const onReady = () => {
              clearTimeout(timer);
              resolve();
            };
            // The listener goes when the wait ends, so retries during a long outage do not pile them up.
            const timer = setTimeout(() => {
              connection.off('ready', onReady);
              reject(new Error(`Redis is not connected after ${timeoutMs} ms`));
            }, timeoutMs);
            connection.once('ready', onReady);
          }),
      ),
    );
  }

  private async relayBatch(): Promise<number> {
    const { db } = this.options;
    const timeoutMs = this.options.sendTimeoutMs ?? 5_000;
    // Waited for before the transaction: rows stay locked while it is open, and on embedded PGlite an
    // open transaction holds up every other query of the subgraph.
    await this.connected(timeoutMs);
    const outcome = await db.transaction(async (tx): Promise<{ relayed: number; failure?: unknown }> => {
      // SKIP LOCKED lets several replicas relay side by side without sending a row twice at once. Ordered by the
      // column, not by the text `id` of the select list (which would put row 10 before row 9).
      const rows = await tx.query<OutboxRow>(
        `SELECT id::text AS id, kind, target, name, key, payload FROM outbox
         WHERE relayed_at IS NULL AND failed_at IS NULL ORDER BY outbox.id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [this.options.batchSize ?? 100],
      );
      if (rows.length === 0) return { relayed: 0 };
      const undeliverable = new Map<string, string>();
      for (const row of rows) {
        const reason = this.undeliverable(row);
        if (reason) undeliverable.set(row.id, reason);
      }
      const deliverable = undeliverable.size === 0 ? rows : rows.filter((r) => !undeliverable.has(r.id));
      let failure: unknown;
      try {
        if (deliverable.length > 0) await withTimeout(this.send(deliverable), timeoutMs, `relaying ${deliverable.length} outbox messages`);
      } catch (error) {
        failure = error;
      }
      if (failure === undefined && deliverable.length > 0) {
        // Pub/sub has no delivery record to check: an event is done once published. Jobs wait for the reconciler.
        await tx.query(
          `UPDATE outbox SET relayed_at = now(), attempts = attempts + 1, last_error = NULL,
             confirmed_at = CASE WHEN kind = 'event' THEN now() END
           WHERE id = ANY($1::bigint[])`,
          [deliverable.map((r) => r.id)],
        );
      } else if (failure !== undefined) {
        // Left for the next round, with what went wrong (the rows stay in order behind the outage).
        await tx.query('UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::bigint[])', [
          deliverable.map((r) => r.id),
          errorText(failure),
        ]);
      }
      if (undeliverable.size > 0) {
        await tx.query(
          `UPDATE outbox SET failed_at = now(), attempts = attempts + 1, last_error = m.reason
           FROM jsonb_each_text($1::jsonb) AS m(id, reason) WHERE outbox.id = m.id::bigint`,
          [JSON.stringify(Object.fromEntries(undeliverable))],
        );
        for (const [id, reason] of undeliverable) this.options.log.error({ id, reason }, 'outbox row set aside: it cannot be delivered');
      }
      return { relayed: failure === undefined ? rows.length : undeliverable.size, failure };
    });
    if (outcome.failure !== undefined) throw outcome.failure;
    return outcome.relayed;
  }

  /** Why a row can never be sent by this relay (a target it does not know), or undefined. */
  private undeliverable(row: OutboxRow): string | undefined {
    if (row.kind === 'event') return this.options.publisher ? undefined : `row ${row.id} is an event but the relay has no publisher`;
    return this.options.queues[row.target] ? undefined : `row ${row.id} targets unknown queue ${row.target}`;
  }

  /**
   * Hands a batch to Redis in one round trip per queue (addBulk) and one for all events (a pipeline, which keeps
   * their order), instead of one per message; resolves once Redis accepted every message.
   */
  private async send(rows: readonly OutboxRow[]): Promise<void> {
    const { queues, publisher } = this.options;
    const jobs = new Map<Queue, { name: string; data: unknown; opts: { jobId: string } }[]>();
    const events: OutboxRow[] = [];
    for (const row of rows) {
      if (row.kind === 'event') {
        if (!publisher) throw new Error(`outbox row ${row.id} is an event but the relay has no publisher`);
        events.push(row);
        continue;
      }
      const queue = queues[row.target];
      if (!queue) throw new Error(`outbox row ${row.id} targets unknown queue ${row.target}`);
      let list = jobs.get(queue);
      if (!list) {
        list = [];
        jobs.set(queue, list);
      }
      list.push({ name: row.name, data: row.payload, opts: { jobId: row.key } });
    }
    const sent: Promise<unknown>[] = [...jobs].map(([queue, list]) => queue.addBulk(list));
    if (publisher && events.length > 0) {
      const pipeline = publisher.pipeline();
      for (const row of events) pipeline.publish(row.target, JSON.stringify({ name: row.name, key: row.key, payload: row.payload }));
      sent.push(
        pipeline.exec().then((results) => {
          const failed = results?.find(([error]) => error);
          if (!results || failed) throw failed?.[0] ?? new Error('publishing outbox events failed');
        }),
      );
    }
    await Promise.all(sent);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.dueSoon = false;
    await this.running;
  }
}
