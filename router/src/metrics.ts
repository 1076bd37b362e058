import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ApolloServerPlugin } from '@apollo/server';
import type { RouterContext } from './context.js';
import type { BreakerState, ResilienceEvents } from './resilience.js';

/** Every metric of the router's own starts with this (Prometheus: one prefix per application). */
export const METRIC_PREFIX = 'shop_router_';
const PREFIX = METRIC_PREFIX;
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BREAKER_STATE_VALUES: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/** How many distinct client-chosen operation names get a label value of their own (the rest count as `other`). */
export const OPERATION_LABELS_MAX = 100;
export const OTHER_OPERATION = 'other';
export const ANONYMOUS_OPERATION = 'anonymous';

/**
 * The `operation` label of an operation name, from a bounded set: a client picks its operation names, and each
 * new value is a new series in every scraper. With a safelist only its operations' names are labels; otherwise
 * the first `max` names seen. Anything else is `other`, an operation without a name `anonymous`. One Set lookup
 * per operation once the set is full.
 */
export class OperationLabels {
  private readonly names: Set<string>;
  private readonly fixed: boolean;

  constructor(
    private readonly max = OPERATION_LABELS_MAX,
    /** The only names that may be labels (the safelist's); the first `max` seen when absent. */
    known?: Iterable<string>,
  ) {
    this.fixed = known !== undefined;
    this.names = new Set(known);
  }

  label(name: string | null | undefined): string {
    if (!name) return ANONYMOUS_OPERATION;
    if (this.names.has(name)) return name;
    if (this.fixed || this.names.size >= this.max) return OTHER_OPERATION;
    this.names.add(name);
    return name;
  }
}

/** The router's Prometheus metrics, in a registry of its own (tests run several routers in one process). */
export class RouterMetrics {
  readonly registry = new Registry();
  readonly operations = new Counter({
    name: `${PREFIX}graphql_operations_total`,
    help: 'GraphQL operations answered, by operation name, type and outcome (ok or error).',
    labelNames: ['operation', 'type', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly operationDuration = new Histogram({
    name: `${PREFIX}graphql_operation_duration_seconds`,
    help: 'Time to answer a GraphQL operation, by operation name.',
    labelNames: ['operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly subgraphFetchDuration = new Histogram({
    name: `${PREFIX}subgraph_fetch_duration_seconds`,
    help: 'Time of one fetch from a subgraph, by subgraph and outcome (ok, error or unavailable).',
    labelNames: ['subgraph', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly breakerOpened = new Counter({
    name: `${PREFIX}subgraph_breaker_opened_total`,
    help: 'Times a subgraph circuit breaker opened (the router started failing fast), by subgraph.',
    labelNames: ['subgraph'] as const,
    registers: [this.registry],
  });
  readonly fetchesRejected = new Counter({
    name: `${PREFIX}subgraph_fetches_rejected_total`,
    help: 'Subgraph fetches refused without a network call because the breaker was open, by subgraph.',
    labelNames: ['subgraph'] as const,
    registers: [this.registry],
  });
  readonly fetchRetries = new Counter({
    name: `${PREFIX}subgraph_fetch_retries_total`,
    help: 'Query fetches sent again after their connection failed before any answer, by subgraph.',
    labelNames: ['subgraph'] as const,
    registers: [this.registry],
  });
  readonly fetchesDeduplicated = new Counter({
    name: `${PREFIX}subgraph_fetches_deduplicated_total`,
    help: 'Query fetches answered by an identical one already in flight, by subgraph.',
    labelNames: ['subgraph'] as const,
    registers: [this.registry],
  });
  readonly entityCacheEntities = new Counter({
    name: `${PREFIX}entity_cache_entities_total`,
    help: 'Entities of _entities fetches answered from the entity cache (hit) or asked of the subgraph (miss), by subgraph.',
    labelNames: ['subgraph', 'result'] as const,
    registers: [this.registry],
  });
  readonly entityFetchesCombined = new Counter({
    name: `${PREFIX}subscription_entity_fetches_combined_total`,
    help: 'Entity fetches of subscription events sent inside a combined fetch with others of the same caller, by subgraph.',
    labelNames: ['subgraph'] as const,
    registers: [this.registry],
  });
  private breakerStates: () => Record<string, BreakerState> = () => ({});

  constructor(
    openSubscriptions: () => number,
    private readonly operationLabels = new OperationLabels(),
  ) {
    const breakerStates = () => this.breakerStates();
    new Gauge({
      name: `${PREFIX}subgraph_breaker_state`,
      help: 'Circuit breaker of each subgraph: 0 closed, 1 half-open (probing), 2 open (failing fast).',
      labelNames: ['subgraph'] as const,
      registers: [this.registry],
      collect() {
        for (const [subgraph, state] of Object.entries(breakerStates())) this.set({ subgraph }, BREAKER_STATE_VALUES[state]);
      },
    });
    new Gauge({
      name: `${PREFIX}graphql_subscriptions_open`,
      help: 'Client subscriptions open on this router.',
      registers: [this.registry],
      collect() {
        this.set(openSubscriptions());
      },
    });
    // Node's process metrics keep their standard names (process_*, nodejs_*), which ready-made dashboards expect.
    collectDefaultMetrics({ register: this.registry });
  }

  /** Reports the breakers' states on every scrape and counts what they and the fetch wrapper do. */
  watchResilience(states: () => Record<string, BreakerState>): ResilienceEvents {
    this.breakerStates = states;
    return {
      breakerOpened: (subgraph) => this.breakerOpened.inc({ subgraph }),
      rejected: (subgraph) => this.fetchesRejected.inc({ subgraph }),
      retried: (subgraph) => this.fetchRetries.inc({ subgraph }),
      deduplicated: (subgraph) => this.fetchesDeduplicated.inc({ subgraph }),
    };
  }

  /** Counts and times every operation, labelled by its name from a bounded set (see OperationLabels). */
  plugin(): ApolloServerPlugin<RouterContext> {
    return {
      requestDidStart: async () => {
        const started = performance.now();
        return {
          willSendResponse: async ({ operationName, operation, errors, response }) => {
            const name = this.operationLabels.label(operationName);
            const body = response.body;
            const result = body.kind === 'single' ? body.singleResult : body.initialResult;
            const failed = (errors?.length ?? 0) > 0 || (result.errors?.length ?? 0) > 0;
            const record = (outcome: boolean) => {
              this.operations.inc({ operation: name, type: operation?.operation ?? 'unknown', outcome: outcome ? 'error' : 'ok' });
              this.operationDuration.observe({ operation: name }, (performance.now() - started) / 1000);
            };
            if (body.kind === 'single') {
              record(failed);
              return;
            }
            // @defer: the operation ends with its last payload, and fails if any payload carries errors.
            const payloads = body.subsequentResults;
            body.subsequentResults = (async function* () {
              let deferredFailed = false;
              try {
                for await (const payload of payloads) {
                  const items: readonly { errors?: readonly unknown[] }[] = payload.incremental ?? [];
                  if (items.some((item) => (item.errors?.length ?? 0) > 0)) deferredFailed = true;
                  yield payload;
                }
              } finally {
                record(failed || deferredFailed);
              }
            })();
          },
        };
      },
    };
  }

  /**
   * The listener of the metrics port (METRICS_PORT): GET /metrics in the Prometheus text format, 404 otherwise.
   * Apart from the client port, so scrapers reach it and clients do not.
   */
  listener() {
    return (req: IncomingMessage, res: ServerResponse): void => {
      if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
        res.statusCode = 404;
        res.setHeader('content-type', 'text/plain; charset=utf-8');
        res.end('Not found: metrics are served at /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => {
          res.setHeader('content-type', this.registry.contentType);
          res.end(text);
        },
        (error: unknown) => {
          res.statusCode = 500;
          res.end(`metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
        },
      );
    };
  }
}
