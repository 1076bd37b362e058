import { Counter, Registry } from 'prom-client';

/**
 * The metrics of a subgraph or worker process, served at its `/metrics` (Prometheus text). One registry per process:
 * several subgraphs in one process (tests) tell their series apart by the `service` label.
 */
export const processMetrics = new Registry();

/** Jobs the outbox reconciler sent to Redis again because Redis no longer knew them, by queue and job name. */
export const outboxResent = new Counter({
  name: 'outbox_reconciler_resent_total',
  help: 'Outbox jobs sent again because Redis had lost them (restart without data, failover, flush)',
  labelNames: ['service', 'queue', 'job'] as const,
  registers: [processMetrics],
});

/** What the reconciler found when it looked a relayed job up in Redis, by BullMQ state ("unknown": gone). */
export const outboxChecked = new Counter({
  name: 'outbox_reconciler_checked_total',
  help: 'Relayed outbox jobs the reconciler looked up in Redis, by the state it found',
  labelNames: ['service', 'state'] as const,
  registers: [processMetrics],
});

/** GET /metrics for a service's HTTP server; returns false for other requests. */
export async function serveMetrics(req: { method?: string; url?: string }, res: import('node:http').ServerResponse): Promise<boolean> {
  if (req.method !== 'GET' || req.url !== '/metrics') return false;
  res.setHeader('content-type', processMetrics.contentType);
  res.end(await processMetrics.metrics());
  return true;
}
