import { GraphQLError, getOperationAST, type DocumentNode, type ExecutionResult, type FormattedExecutionResult, type GraphQLSchema } from 'graphql';
import { Supergraph, operationFromDocument, type Schema } from '@apollo/federation-internals';
import { QueryPlanner, type FetchNode, type PlanNode } from '@apollo/query-planner';
import { buildOperationContext, executeQueryPlan, type GraphQLDataSource, type ServiceMap } from '@apollo/gateway';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { Logger } from '@shop/common';
import type { RouterContext } from './context.js';
import { PushStream } from '@shop/common';
import { operationKey, planCacheOf } from './plan-cache.js';
import { SUBSCRIPTION_SHARING, SharedSubscription, stableJson, type Sharing } from './shared-subscription.js';
import { EntityFetchBatcher, type EntityBatchOptions } from './entity-batch.js';
import { RouterErrorCode } from './error-codes.js';

export const SCHEMA_RELOADED = RouterErrorCode.SubscriptionSchemaReloaded;
export const SUBSCRIPTION_FAILED = RouterErrorCode.SubscriptionFailed;

type Planned = {
  operationContext: ReturnType<typeof buildOperationContext>;
  plan: ReturnType<QueryPlanner['buildQueryPlan']>;
  /** The operation's root field, which decides whether identical subscribers may share an upstream subscription. */
  rootField: string | undefined;
};

type UpstreamEvent = FormattedExecutionResult<Record<string, unknown>, unknown>;

/** Everything planning and execution need for one version of the supergraph. */
interface Planning {
  planner: QueryPlanner;
  apiSchema: Schema;
  graphqlApiSchema: GraphQLSchema;
  supergraphSchema: GraphQLSchema;
  /** The data sources, with the `_entities` fetches of concurrent events combined (see EntityFetchBatcher). */
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

/** The name of the operation's single root field (subscriptions have exactly one), if it is written as a field. */
function rootFieldOf(document: DocumentNode, operationName: string | undefined): string | undefined {
  const selection = getOperationAST(document, operationName)?.selectionSet.selections[0];
  return selection?.kind === 'Field' ? selection.name.value : undefined;
}

/** Subscribers with equal keys receive equal events: same operation, variables and caller (never shared across callers). */
function sharingKey(request: SubscriptionRequest): string {
  const identity = request.context.identity;
  const caller = identity ? `${identity.role}:${identity.sub}` : 'anonymous';
  return `${caller}\n${stableJson(request.variables)}\n${operationKey(request.document, request.operationName)}`;
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
 *
 * Subscribers with the same operation, variables and caller (user id and role) share one upstream subscription and
 * one resolution of each event when the root field allows it (see SUBSCRIPTION_SHARING); callers never share.
 */
export class SubscriptionExecutor {
  private planning: Planning | undefined;
  private readonly active = new Set<PushStream<ExecutionResult>>();
  private readonly upstreams = new Map<string, Client>();
  /** Shared upstream subscriptions by operation, variables and caller. */
  private readonly shared = new Map<string, SharedSubscription<UpstreamEvent>>();
  private upstreamSubscriptions = 0;
  /** Each client stream's request id, for the log line when it is cut off. */
  private readonly requestIds = new WeakMap<PushStream<ExecutionResult>, string>();
  private readonly batcher: EntityFetchBatcher;

  constructor(
    private readonly dataSource: (name: string, url: string) => GraphQLDataSource,
    private readonly urlOverrides: Record<string, string>,
    private readonly log: Logger,
    /** Which root fields' subscribers may share an upstream subscription, and how a late joiner starts. */
    private sharing: Readonly<Record<string, Sharing>> = SUBSCRIPTION_SHARING,
    batching: EntityBatchOptions = {},
  ) {
    this.batcher = new EntityFetchBatcher(batching);
  }

  /** Open client subscriptions (for tests and metrics). */
  get openCount(): number {
    return this.active.size;
  }

  /** Open upstream subscriptions: at most one per distinct operation, variables and caller of a shared field. */
  get upstreamCount(): number {
    return this.upstreamSubscriptions;
  }

  /** Replaces the sharing policy for subscriptions opened from now on (tests). */
  setSharing(sharing: Readonly<Record<string, Sharing>>): void {
    this.sharing = sharing;
  }

  /** Takes a new supergraph; subscriptions planned on the old one end with a clear error. */
  updateSchema(graphqlApiSchema: GraphQLSchema, supergraphSdl: string): void {
    const supergraph = Supergraph.build(supergraphSdl);
    const urls = new Map(supergraph.subgraphsMetadata().map((s) => [s.name, this.urlOverrides[s.name] ?? s.url]));
    const serviceMap: ServiceMap = Object.create(null) as ServiceMap;
    for (const [name, url] of urls) {
      const source = this.dataSource(name, url);
      serviceMap[name] = { process: (options) => this.batcher.process(name, source, options) };
    }
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
    // Ending the streams empties and closes every shared upstream; none is joined on the new schema.
    this.shared.clear();
    for (const stream of [...this.active]) {
      stream.push(error('The graph was updated; subscribe again to continue receiving events.', SCHEMA_RELOADED));
      stream.end();
    }
  }

  subscribe(request: SubscriptionRequest): AsyncIterableIterator<ExecutionResult> | ExecutionResult {
    const planning = this.planning;
    if (!planning) return error('The router has no schema yet', SUBSCRIPTION_FAILED);
    // Planned once per operation text and supergraph, shared by every subscriber (read-only in execution).
    const { operationContext, plan, rootField } = planCacheOf<Planned>(planning).get(request.document, request.operationName, () => ({
      operationContext: buildOperationContext({
        schema: planning.graphqlApiSchema,
        operationDocument: request.document,
        operationName: request.operationName,
      }),
      plan: planning.planner.buildQueryPlan(
        operationFromDocument(planning.apiSchema, request.document, { operationName: request.operationName }),
      ),
      rootField: rootFieldOf(request.document, request.operationName),
    }));
    if (plan.node?.kind !== 'Subscription') return error('Not a subscription operation', SUBSCRIPTION_FAILED);
    const { primary, rest } = plan.node;
    const url = planning.urls.get(primary.serviceName);
    if (!url) return error(`Unknown subgraph ${primary.serviceName}`, SUBSCRIPTION_FAILED);

    const sharing = rootField === undefined ? undefined : this.sharing[rootField];
    const key = sharing && sharingKey(request);
    let group = key === undefined ? undefined : this.shared.get(key);
    if (!group) group = this.openUpstream(planning, url, primary, rest, operationContext, request, sharing, key);

    const joined = group;
    const stream = new PushStream<ExecutionResult>(() => {
      this.active.delete(stream);
      // The lazy client closes its socket by itself once its last subscription is gone.
      joined.leave(stream);
    });
    this.active.add(stream);
    this.requestIds.set(stream, request.context.requestId);
    joined.join(stream);
    return stream;
  }

  /** Opens one upstream subscription for `request` (and, under `key`, for identical subscribers that come later). */
  private openUpstream(
    planning: Planning,
    url: string,
    primary: FetchNode,
    rest: PlanNode | undefined,
    operationContext: ReturnType<typeof buildOperationContext>,
    request: SubscriptionRequest,
    sharing: Sharing | undefined,
    key: string | undefined,
  ): SharedSubscription<UpstreamEvent> {
    const group: SharedSubscription<UpstreamEvent> = new SharedSubscription<UpstreamEvent>({
      sharing,
      resolve: (event) => this.resolveEvent(planning, primary, rest, operationContext, request, event),
      failure: () => error(`The ${primary.serviceName} service ended the subscription with an error.`, SUBSCRIPTION_FAILED),
      onClosed: () => {
        this.upstreamSubscriptions--;
        if (key !== undefined && this.shared.get(key) === group) this.shared.delete(key);
      },
      onSlowMember: (stream) => this.log.warn({ requestId: this.requestIds.get(stream) }, 'subscriber too slow; subscription ended'),
      onResolveFailed: (cause) => this.log.error({ err: cause, subgraph: primary.serviceName }, 'resolving a subscription event failed'),
    });
    if (key !== undefined) this.shared.set(key, group);
    this.upstreamSubscriptions++;

    const variables: Record<string, unknown> = {};
    for (const name of primary.variableUsages ?? []) {
      if (name in request.variables) variables[name] = request.variables[name];
    }
    group.start((sink) =>
      this.upstream(url).subscribe<Record<string, unknown>, unknown>(
        {
          query: primary.operation,
          variables,
          ...(primary.operationName ? { operationName: primary.operationName } : {}),
          // One upstream socket carries many subscribers, so each subscription names its own (signed) caller.
          extensions: upstreamExtensions(request.context, primary.serviceName),
        },
        {
          next: (event) => sink.next(event),
          error: (cause) => {
            this.log.warn({ err: cause, subgraph: primary.serviceName }, 'upstream subscription failed');
            sink.error(cause);
          },
          complete: () => sink.complete(),
        },
      ),
    );
    return group;
  }

  private async resolveEvent(
    planning: Planning,
    primary: FetchNode,
    rest: PlanNode | undefined,
    operationContext: ReturnType<typeof buildOperationContext>,
    request: SubscriptionRequest,
    event: UpstreamEvent,
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
