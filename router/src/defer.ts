import { GraphQLError, Kind, getOperationAST, type DocumentNode, type GraphQLSchema } from 'graphql';
import { Supergraph, operationFromDocument, type Schema } from '@apollo/federation-internals';
import { QueryPlanner, type DeferredNode, type FetchNode, type PlanNode } from '@apollo/query-planner';
import { buildOperationContext, executeQueryPlan, type GraphQLDataSource, type ServiceMap } from '@apollo/gateway';
import type { GatewayExecutionResult, GatewayGraphQLRequestContext } from '@apollo/server-gateway-interface';
import { PushStream } from '@shop/common';
import type { RouterContext } from './context.js';
import { operationKey, planCacheOf } from './plan-cache.js';
import {
  coercedVariables,
  deferConditionsKey,
  deferredSelection,
  fragmentDefinitions,
  initialDocument,
  prepareDeferOperation,
} from './defer-document.js';

type OperationContext = ReturnType<typeof buildOperationContext>;
type ResponsePath = (string | number)[];

/** One item of a subsequent payload (deferSpec=20220824). */
export interface IncrementalItem {
  data: Record<string, unknown> | null;
  path: ResponsePath;
  label?: string;
  errors?: readonly GraphQLError[];
  extensions?: Record<string, unknown>;
}

/** A payload after the first: the deferred parts that completed, and whether more follow. */
export interface SubsequentPayload {
  incremental?: IncrementalItem[];
  hasNext: boolean;
}

/** An operation with deferred parts: the first payload, and the others as they complete. */
export interface DeferredExecution {
  initial: GatewayExecutionResult;
  /** Undefined when the plan deferred nothing (the first payload is the whole answer). */
  subsequent: AsyncIterable<SubsequentPayload> | undefined;
}

/** The primary part of a plan or one deferred part of it, with what shapes its payloads. */
interface Part {
  /** The part's fetches, nested deferred parts left out. */
  node: PlanNode | undefined;
  /** The same fetches answered from the request's recording, for the parts that build on this one. */
  replay: PlanNode | undefined;
  children: Part[];
  operationContext: OperationContext;
  /** From the root to the objects the deferred fragment applies to; [] for the primary part. */
  path: string[];
  /** The client's label, shown in the payloads. */
  label: string | undefined;
}

type Prepared = { root: Part } | { root: undefined };

interface Planning {
  planner: QueryPlanner;
  apiSchema: Schema;
  supergraphSchema: GraphQLSchema;
  services: Map<string, GraphQLDataSource>;
}

/** Service name prefix of the fetches a deferred part replays from the recording (never sent). */
const REPLAY = 'replay:';

/** Nested `Defer` nodes replaced by their primary parts; their deferred parts come back separately. */
function split(node: PlanNode | undefined): { node: PlanNode | undefined; deferred: DeferredNode[] } {
  if (!node) return { node: undefined, deferred: [] };
  switch (node.kind) {
    case 'Fetch':
      return { node, deferred: [] };
    case 'Flatten': {
      const inner = split(node.node);
      return { node: inner.node && { ...node, node: inner.node }, deferred: inner.deferred };
    }
    case 'Sequence':
    case 'Parallel': {
      const parts = node.nodes.map(split);
      const nodes = parts.flatMap((p) => (p.node ? [p.node] : []));
      return {
        node: nodes.length === 0 ? undefined : nodes.length === 1 ? nodes[0] : { ...node, nodes },
        deferred: parts.flatMap((p) => p.deferred),
      };
    }
    case 'Condition': {
      const ifClause = split(node.ifClause);
      const elseClause = split(node.elseClause);
      return {
        node: ifClause.node || elseClause.node ? { ...node, ifClause: ifClause.node, elseClause: elseClause.node } : undefined,
        deferred: [...ifClause.deferred, ...elseClause.deferred],
      };
    }
    case 'Defer': {
      const primary = split(node.primary.node);
      return { node: primary.node, deferred: [...primary.deferred, ...node.deferred] };
    }
  }
}

/** The node with every fetch sent to its replaying service instead. */
function replayOf(node: PlanNode | undefined): PlanNode | undefined {
  if (!node) return undefined;
  switch (node.kind) {
    case 'Fetch':
      return { ...node, serviceName: `${REPLAY}${node.serviceName}` } satisfies FetchNode;
    case 'Flatten':
      return { ...node, node: replayOf(node.node)! };
    case 'Sequence':
    case 'Parallel':
      return { ...node, nodes: node.nodes.map((n) => replayOf(n)!) };
    case 'Condition':
      return { ...node, ifClause: replayOf(node.ifClause), elseClause: replayOf(node.elseClause) };
    case 'Defer':
      throw new Error('split() leaves no Defer node to replay');
  }
}

function labelsOf(node: PlanNode | undefined, into: Set<string>): Set<string> {
  const deferred = split(node).deferred;
  for (const part of deferred) {
    if (part.label !== undefined) into.add(part.label);
    labelsOf(part.node, into);
  }
  return into;
}

function recordingKey(query: string | undefined, variables: Record<string, unknown> | undefined): string {
  return `${query ?? ''}\n${JSON.stringify(variables ?? {})}`;
}

/** Objects at `path` in `data`, stepping through lists, with their response paths; where a null cut the path off. */
function objectsAt(data: unknown, path: readonly string[]): { objects: { value: Record<string, unknown>; path: ResponsePath }[]; cut: ResponsePath | undefined } {
  const objects: { value: Record<string, unknown>; path: ResponsePath }[] = [];
  let cut: ResponsePath | undefined;
  const walk = (value: unknown, step: number, at: ResponsePath): void => {
    if (value === null || value === undefined) {
      cut ??= at;
      return;
    }
    if (Array.isArray(value)) {
      value.forEach((item, index) => walk(item, step, [...at, index]));
      return;
    }
    if (typeof value !== 'object') return;
    const object = value as Record<string, unknown>;
    if (step === path.length) {
      // An object the fragment's type condition does not match has nothing to add.
      if (Object.keys(object).length > 0) objects.push({ value: object, path: at });
      return;
    }
    const key = path[step]!;
    walk(object[key], step + 1, [...at, key]);
  };
  walk(data, 0, []);
  return { objects, cut };
}

function startsWith(path: readonly (string | number)[] | undefined, prefix: ResponsePath): boolean {
  return !!path && prefix.length <= path.length && prefix.every((p, i) => path[i] === p);
}

/**
 * Executes operations that use `@defer`, which `@apollo/gateway` cannot (its executeQueryPlan refuses `Defer`
 * nodes). The operation is planned by the federation query planner with defer support; the plan's primary part
 * runs through the gateway's executeQueryPlan and becomes the first payload; each deferred part runs once the part
 * it builds on is done, and becomes a payload of its own.
 *
 * A deferred part's fetches start from the data of the parts before it (its entity fetches need their keys and
 * `@requires` fields), which executeQueryPlan keeps to itself; so every fetch answer of the request is recorded, and
 * a deferred part is executed as "the earlier parts, answered from the recording, then its own fetches". Nothing is
 * fetched twice (a mutation is never sent again). Each run shapes its answer with a document of its own: the
 * operation without the deferred fragments for the first payload, and for a deferred part the fields leading to its
 * fragment and the fragment's selections, whose objects become the payload's items (one per object under lists).
 *
 * A non-null field that fails inside a deferred fragment nulls the fragment's item (`data: null` at the nearest
 * path that remains, with the errors), rather than the parents already sent.
 */
export class DeferExecutor {
  private sdl: string | undefined;
  private planning: Planning | undefined;

  constructor(
    private readonly dataSource: (name: string, url: string) => GraphQLDataSource,
    private readonly urlOverrides: Record<string, string>,
  ) {}

  /** Takes a new supergraph; its planner is built on the first deferred operation. */
  updateSchema(supergraphSdl: string): void {
    this.sdl = supergraphSdl;
    this.planning = undefined;
  }

  private current(): Planning | undefined {
    if (this.planning || this.sdl === undefined) return this.planning;
    const supergraph = Supergraph.build(this.sdl);
    const services = new Map<string, GraphQLDataSource>();
    for (const subgraph of supergraph.subgraphsMetadata()) {
      services.set(subgraph.name, this.dataSource(subgraph.name, this.urlOverrides[subgraph.name] ?? subgraph.url));
    }
    this.planning = {
      planner: new QueryPlanner(supergraph, { incrementalDelivery: { enableDefer: true } }),
      apiSchema: supergraph.apiSchema(),
      supergraphSchema: supergraph.schema.toGraphQLJSSchema(),
      services,
    };
    return this.planning;
  }

  /**
   * Runs the operation with its deferred parts as separate payloads, or returns undefined when it has none to defer
   * (no `@defer`, or only `@defer(if: false)`), for the gateway to run as usual.
   */
  async execute(request: GatewayGraphQLRequestContext<RouterContext>): Promise<DeferredExecution | undefined> {
    const planning = this.current();
    const operationName = request.request.operationName ?? undefined;
    const operation = getOperationAST(request.document, operationName);
    if (!planning || !operation || operation.operation === 'subscription') return undefined;
    const variables = coercedVariables(request.schema, operation, request.request.variables);
    if (!variables) return undefined;
    const fragments = fragmentDefinitions(request.document);
    const key = `${operationKey(request.document, operationName)}\n${deferConditionsKey(operation, fragments, variables)}`;
    const { root } = planCacheOf<Prepared>(planning).getByKey(key, () => this.prepare(planning, request, operationName, variables));
    if (!root) return undefined;
    return this.run(planning, request, root);
  }

  private prepare(
    planning: Planning,
    request: GatewayGraphQLRequestContext<RouterContext>,
    operationName: string | undefined,
    variables: Record<string, unknown>,
  ): Prepared {
    const prepared = prepareDeferOperation(request.document, operationName, variables);
    if (!prepared || prepared.labels.length === 0) return { root: undefined };
    const document: DocumentNode = { kind: Kind.DOCUMENT, definitions: [prepared.document] };
    const plan = planning.planner.buildQueryPlan(operationFromDocument(planning.apiSchema, document, { operationName }));
    if (plan.node?.kind === 'Subscription') return { root: undefined };
    const planned = labelsOf(plan.node, new Set<string>());
    const contextOf = (doc: DocumentNode) =>
      buildOperationContext({ schema: request.schema, operationDocument: doc, operationName });
    const partOf = (deferred: DeferredNode): Part => {
      const label = deferred.label;
      const selection = label === undefined ? undefined : deferredSelection(prepared.document, label, planned);
      if (!label || !selection) throw new Error(`The plan deferred a fragment the router cannot find (label ${String(label)})`);
      const { node, deferred: nested } = split(deferred.node);
      return {
        node,
        replay: replayOf(node),
        children: nested.map(partOf),
        operationContext: contextOf(selection.document),
        path: selection.path,
        label: prepared.clientLabels.has(label) ? label : undefined,
      };
    };
    const { node, deferred } = split(plan.node as PlanNode | undefined);
    return {
      root: {
        node,
        replay: replayOf(node),
        children: deferred.map(partOf),
        operationContext: contextOf(initialDocument(prepared.document, planned)),
        path: [],
        label: undefined,
      },
    };
  }

  /** The request's data sources: each answer recorded, and replaying services that answer from the recording. */
  private servicesFor(planning: Planning): ServiceMap {
    const recording = new Map<string, string>();
    const services: ServiceMap = Object.create(null) as ServiceMap;
    for (const [name, source] of planning.services) {
      services[name] = {
        process: async (options) => {
          const response = await source.process(options);
          // A copy: the gateway merges answers into its result objects, and later parts mutate those.
          // Errors stay with the part that fetched; a replay brings the data only.
          recording.set(`${name}\n${recordingKey(options.request.query, options.request.variables)}`, JSON.stringify(response.data ?? null));
          return response;
        },
      };
      services[`${REPLAY}${name}`] = {
        process: (options) => {
          const recorded = recording.get(`${name}\n${recordingKey(options.request.query, options.request.variables)}`);
          // Same plan, same data, same requests: a miss is a bug, and a fetch sent again could repeat a mutation.
          if (recorded === undefined) return Promise.reject(new Error(`deferred execution: no recorded answer of ${name} to replay`));
          const data = JSON.parse(recorded) as Record<string, unknown> | null;
          return Promise.resolve(data === null ? {} : { data });
        },
      };
    }
    return services;
  }

  private async run(planning: Planning, request: GatewayGraphQLRequestContext<RouterContext>, root: Part): Promise<DeferredExecution> {
    const services = this.servicesFor(planning);
    const execute = (node: PlanNode | undefined, operationContext: OperationContext) =>
      executeQueryPlan(
        node ? { kind: 'QueryPlan', node } : { kind: 'QueryPlan' },
        services,
        request as Parameters<typeof executeQueryPlan>[2],
        operationContext,
        planning.supergraphSchema,
        planning.apiSchema,
      );
    const initial = await execute(root.node, root.operationContext);
    if (root.children.length === 0) return { initial, subsequent: undefined };

    const stream = new PushStream<SubsequentPayload>(() => {}, 10_000);
    let pending = 0;
    const start = (part: Part, before: Part[]): void => {
      pending++;
      const nodes = [...before.map((p) => p.replay), part.node].filter((n): n is PlanNode => n !== undefined);
      const node: PlanNode | undefined = nodes.length <= 1 ? nodes[0] : { kind: 'Sequence', nodes };
      void execute(node, part.operationContext)
        .then((result) => this.itemsOf(part, result))
        .catch((error: unknown) => {
          request.context.log.error({ err: error }, 'deferred part failed');
          return [{ data: null, path: [], errors: [new GraphQLError('The deferred part of this operation could not be completed.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } })] }];
        })
        .then((items) => {
          for (const child of part.children) start(child, [...before, part]);
          pending--;
          if (items.length > 0 || pending === 0) stream.push({ ...(items.length > 0 ? { incremental: items } : {}), hasNext: pending > 0 });
          if (pending === 0) stream.end();
        });
    };
    for (const part of root.children) start(part, [root]);
    return { initial, subsequent: stream };
  }

  private itemsOf(part: Part, result: GatewayExecutionResult): IncrementalItem[] {
    const { objects, cut } = objectsAt(result.data, part.path);
    const label = part.label === undefined ? {} : { label: part.label };
    const items: IncrementalItem[] = objects.map((o) => ({ data: o.value, path: o.path, ...label }));
    const errors = result.errors ?? [];
    if (errors.length === 0) return items;
    if (items.length === 0) {
      return [{ data: null, path: cut ?? [], ...label, errors }];
    }
    // Each error goes with the item whose path it is under, the others with the first item.
    const byItem = new Map<IncrementalItem, GraphQLError[]>();
    for (const error of errors) {
      const owner = items.find((item) => startsWith(error.path, item.path)) ?? items[0]!;
      byItem.set(owner, [...(byItem.get(owner) ?? []), error]);
    }
    return items.map((item) => (byItem.has(item) ? { ...item, errors: byItem.get(item)! } : item));
  }
}
