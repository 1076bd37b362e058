import { GraphQLError, type DocumentNode, type ExecutionResult, type FormattedExecutionResult, type GraphQLSchema } from 'graphql';
import { Supergraph, operationFromDocument, type Schema } from '@apollo/federation-internals';
import { QueryPlanner, type FetchNode, type PlanNode } from '@apollo/query-planner';
import { buildOperationContext, executeQueryPlan, type GraphQLDataSource, type ServiceMap } from '@apollo/gateway';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { Logger } from '@shop/common';
import type { RouterContext } from './context.js';
import { PushStream } from '@shop/common';
import { planCacheOf } from './plan-cache.js';

export const SCHEMA_RELOADED = 'SUBSCRIPTION_SCHEMA_RELOADED';
export const SUBSCRIPTION_FAILED = 'SUBSCRIPTION_FAILED';

type Planned = { operationContext: ReturnType<typeof buildOperationContext>; plan: ReturnType<QueryPlanner['buildQueryPlan']> };

/** Everything planning and execution need for one version of the supergraph. */
interface Planning {
  planner: QueryPlanner;
  apiSchema: Schema;
  graphqlApiSchema: GraphQLSchema;
  supergraphSchema: GraphQLSchema;
  serviceMap: ServiceMap;
  urls: Map<string, string>;
}

export interface SubscriptionRequest {
  document: DocumentNode;
  variables: Record<string, unknown>;
  operationName: string | undefined;
  context: RouterContext;
}

function error(message: string, code: string): ExecutionResult {
  return { errors: [new GraphQLError(message, { extensions: { code } })] };
}

/**
 * The subscribe message's extensions. The identity is a getter: graphql-ws serializes the payload each time it
 * (re)subscribes, so a subscription resumed after the upstream socket reconnects carries a freshly signed identity
 * rather than one that expired 60 seconds after the client subscribed.
 */
export function upstreamExtensions(context: RouterContext, subgraph: string): Record<string, unknown> {
  const extensions: Record<string, unknown> = { requestId: context.requestId };
  const sign = context.identityFor;
  if (sign) Object.defineProperty(extensions, 'identity', { enumerable: true, get: () => sign(subgraph) });
  return extensions;
}

function toWebSocketUrl(httpUrl: string): string {
  return httpUrl.replace(/^http/, 'ws');
}

/**
 * Executes subscriptions for any subgraph that declares them. The federation
 * query planner splits the operation into a `primary` fetch (the subscription
 * on its owning subgraph, opened over graphql-ws; all client subscriptions to a
 * subgraph share one socket) and a `rest` plan; each event is run through the
 * gateway's executeQueryPlan with the event as the primary fetch's answer, so
 * fields owned by other subgraphs are resolved through entity fetches.
 */
export class SubscriptionExecutor {
  private planning: Planning | undefined;
  private readonly active = new Set<PushStream<ExecutionResult>>();
  private readonly upstreams = new Map<string, Client>();

  constructor(
    private readonly dataSource: (name: string, url: string) => GraphQLDataSource,
    private readonly urlOverrides: Record<string, string>,
    private readonly log: Logger,
  ) {}

  /** Open client subscriptions (for tests and metrics). */
  get openCount(): number {
    return this.active.size;
  }

  /** Takes a new supergraph; subscriptions planned on the old one end with a clear error. */
  updateSchema(graphqlApiSchema: GraphQLSchema, supergraphSdl: string): void {
    const supergraph = Supergraph.build(supergraphSdl);
    const urls = new Map(supergraph.subgraphsMetadata().map((s) => [s.name, this.urlOverrides[s.name] ?? s.url]));
    const serviceMap: ServiceMap = Object.create(null) as ServiceMap;
    for (const [name, url] of urls) serviceMap[name] = this.dataSource(name, url);
    const previous = this.planning;
    this.planning = {
      planner: new QueryPlanner(supergraph),
      apiSchema: supergraph.apiSchema(),
      graphqlApiSchema,
      supergraphSchema: supergraph.schema.toGraphQLJSSchema(),
      serviceMap,
      urls,
    };
    if (!previous) return;
    for (const stream of [...this.active]) {
      stream.push(error('The graph was updated; subscribe again to continue receiving events.', SCHEMA_RELOADED));
      stream.end();
    }
  }

  subscribe(request: SubscriptionRequest): AsyncIterableIterator<ExecutionResult> | ExecutionResult {
    const planning = this.planning;
    if (!planning) return error('The router has no schema yet', SUBSCRIPTION_FAILED);
    // Planned once per operation text and supergraph, shared by every subscriber (read-only in execution).
    const { operationContext, plan } = planCacheOf<Planned>(planning).get(request.document, request.operationName, () => ({
      operationContext: buildOperationContext({
        schema: planning.graphqlApiSchema,
        operationDocument: request.document,
        operationName: request.operationName,
      }),
      plan: planning.planner.buildQueryPlan(
        operationFromDocument(planning.apiSchema, request.document, { operationName: request.operationName }),
      ),
    }));
    if (plan.node?.kind !== 'Subscription') return error('Not a subscription operation', SUBSCRIPTION_FAILED);
    const { primary, rest } = plan.node;
    const url = planning.urls.get(primary.serviceName);
    if (!url) return error(`Unknown subgraph ${primary.serviceName}`, SUBSCRIPTION_FAILED);

    let unsubscribe: () => void = () => undefined;
    const stream = new PushStream<ExecutionResult>(() => {
      this.active.delete(stream);
      // The lazy client closes its socket by itself once its last subscription is gone.
      unsubscribe();
    });
    this.active.add(stream);

    const variables: Record<string, unknown> = {};
    for (const name of primary.variableUsages ?? []) {
      if (name in request.variables) variables[name] = request.variables[name];
    }
    // Events are resolved one after another so clients see them in order.
    let queue: Promise<void> = Promise.resolve();
    unsubscribe = this.upstream(url).subscribe(
      {
        query: primary.operation,
        variables,
        ...(primary.operationName ? { operationName: primary.operationName } : {}),
        // One upstream socket carries many subscribers, so each subscription names its own (signed) caller.
        extensions: upstreamExtensions(request.context, primary.serviceName),
      },
      {
        next: (event) => {
          queue = queue
            .then(() => this.resolveEvent(planning, primary, rest, operationContext, request, event))
            .then((result) => {
              if (!stream.push(result)) {
                this.log.warn({ requestId: request.context.requestId }, 'subscriber too slow; subscription ended');
              }
            });
        },
        error: (cause) => {
          this.log.warn({ err: cause, subgraph: primary.serviceName }, 'upstream subscription failed');
          void queue.then(() => {
            stream.push(error(`The ${primary.serviceName} service ended the subscription with an error.`, SUBSCRIPTION_FAILED));
            stream.end();
          });
        },
        complete: () => void queue.then(() => stream.end()),
      },
    );
    return stream;
  }

  private async resolveEvent(
    planning: Planning,
    primary: FetchNode,
    rest: PlanNode | undefined,
    operationContext: ReturnType<typeof buildOperationContext>,
    request: SubscriptionRequest,
    event: FormattedExecutionResult<Record<string, unknown>, unknown>,
  ): Promise<ExecutionResult> {
    // Upstream errors arrive formatted (plain objects); the graphql-ws server wants GraphQLErrors.
    if (!event.data) {
      return {
        errors: (event.errors ?? []).map(
          (e) => new GraphQLError(e.message, { path: e.path, extensions: { ...e.extensions, serviceName: primary.serviceName } }),
        ),
      };
    }
    const realSource = planning.serviceMap[primary.serviceName]!;
    const eventSource: GraphQLDataSource = {
      process: (options) =>
        options.request.query === primary.operation
          ? Promise.resolve({ data: event.data, ...(event.errors ? { errors: event.errors } : {}) })
          : realSource.process(options),
    };
    const node: PlanNode = rest ? { kind: 'Sequence', nodes: [primary, rest] } : primary;
    const requestContext = {
      request: { query: '', variables: request.variables, operationName: request.operationName },
      context: request.context,
      logger: this.log,
      metrics: {},
      operationName: request.operationName ?? null,
    } as unknown as Parameters<typeof executeQueryPlan>[2];
    const result = await executeQueryPlan(
      { kind: 'QueryPlan', node },
      { ...planning.serviceMap, [primary.serviceName]: eventSource },
      requestContext,
      operationContext,
      planning.supergraphSchema,
      planning.apiSchema,
    );
    return { data: result.data ?? null, ...(result.errors ? { errors: result.errors } : {}) };
  }

  private upstream(url: string): Client {
    let client = this.upstreams.get(url);
    if (!client) {
      client = createClient({
        url: toWebSocketUrl(url),
        webSocketImpl: WebSocket,
        lazy: true,
        lazyCloseTimeout: 1_000,
        keepAlive: 15_000,
        retryAttempts: 5,
        shouldRetry: () => true,
      });
      this.upstreams.set(url, client);
    }
    return client;
  }

  async close(): Promise<void> {
    for (const stream of [...this.active]) {
      stream.push(error('The router is shutting down; reconnect to continue.', 'SHUTTING_DOWN'));
      stream.end();
    }
    await Promise.all([...this.upstreams.values()].map((c) => c.dispose()));
    this.upstreams.clear();
  }
}
