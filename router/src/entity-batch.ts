import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import type { RouterContext } from './context.js';
import { stableJson } from './shared-subscription.js';

type ProcessOptions = GraphQLDataSourceProcessOptions;
type GraphQLErrorLike = NonNullable<GatewayGraphQLResponse['errors']>[number];

/** One `_entities` fetch waiting to go out, possibly together with others of its lane. */
interface Member {
  options: ProcessOptions;
  representations: unknown[];
  resolve(response: GatewayGraphQLResponse): void;
  reject(error: unknown): void;
}

/** Fetches that may go out as one: same subgraph, operation, other variables and caller. */
interface Lane {
  busy: boolean;
  waiting: Member[];
}

export interface EntityBatchOptions {
  /** Most representations in one combined fetch (default 500); the rest go in the next. */
  maxRepresentations?: number;
  /** Called for each combined fetch with how many fetches it carried (two or more). */
  onCombined?: (subgraph: string, fetches: number) => void;
}

/** Who the subgraph is told the caller is: fetches of different callers never go out together. */
function callerOf(options: ProcessOptions): string {
  const identity = 'incomingRequestContext' in options ? (options.context as RouterContext).identity : undefined;
  return identity ? `${identity.role}:${identity.sub}` : 'anonymous';
}

/**
 * Combines concurrent `_entities` fetches of subscription events. Each event of each subscription is resolved by its
 * own query plan execution, so N events arriving together would make N fetches of the same entity operation from
 * each subgraph. Here a lane (subgraph, operation text, other variables, caller) has at most one fetch in flight:
 * a fetch that finds its lane idle goes out at once (after the current I/O turn, so fetches started by events read
 * together leave together); fetches that arrive meanwhile wait and leave as one, their representations concatenated.
 * The answer is split back: each gets its slice of `_entities`, and errors whose path names an entity go to the
 * fetch that asked for it (renumbered), other errors to all. Under a light load nothing waits; under a heavy one
 * each subgraph gets fewer, larger requests, which its DataLoaders read with one statement.
 *
 * The combined fetch carries the first member's request id and trace context. Callers never share a fetch, so the
 * subgraph authorizes each exactly as before.
 */
export class EntityFetchBatcher {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly options: EntityBatchOptions = {}) {}

  process(subgraph: string, source: GraphQLDataSource, options: ProcessOptions): Promise<GatewayGraphQLResponse> {
    const variables = options.request.variables;
    const representations = variables?.representations;
    if (!Array.isArray(representations) || !options.request.query) return source.process(options);
    const { representations: _, ...others } = variables!;
    const key = [subgraph, callerOf(options), options.request.operationName ?? '', stableJson(others), options.request.query].join('\n');
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { busy: false, waiting: [] };
      this.lanes.set(key, lane);
    }
    const current = lane;
    return new Promise<GatewayGraphQLResponse>((resolve, reject) => {
      current.waiting.push({ options, representations, resolve, reject });
      if (!current.busy) {
        current.busy = true;
        setImmediate(() => this.next(subgraph, source, key, current));
      }
    });
  }

  /** Sends the lane's waiting fetches as one (up to the limit), then the next group, until none waits. */
  private next(subgraph: string, source: GraphQLDataSource, key: string, lane: Lane): void {
    if (lane.waiting.length === 0) {
      lane.busy = false;
      if (this.lanes.get(key) === lane) this.lanes.delete(key);
      return;
    }
    const limit = this.options.maxRepresentations ?? 500;
    let count = 0;
    let take = 0;
    while (take < lane.waiting.length && (take === 0 || count + lane.waiting[take]!.representations.length <= limit)) {
      count += lane.waiting[take]!.representations.length;
      take++;
    }
    const group = lane.waiting.splice(0, take);
    this.send(subgraph, source, group).finally(() => this.next(subgraph, source, key, lane));
  }

  private async send(subgraph: string, source: GraphQLDataSource, group: Member[]): Promise<void> {
    const [first] = group as [Member, ...Member[]];
    if (group.length === 1) {
      await source.process(first.options).then(first.resolve, first.reject);
      return;
    }
    this.options.onCombined?.(subgraph, group.length);
    const combined: ProcessOptions = {
      ...first.options,
      request: {
        ...first.options.request,
        variables: { ...first.options.request.variables, representations: group.flatMap((m) => m.representations) },
      },
    };
    let response: GatewayGraphQLResponse;
    try {
      response = await source.process(combined);
    } catch (error) {
      for (const member of group) member.reject(error);
      return;
    }
    splitAnswer(subgraph, response, group);
  }
}

/** Hands each member its part of a combined answer. */
function splitAnswer(subgraph: string, response: GatewayGraphQLResponse, group: readonly Member[]): void {
  const total = group.reduce((sum, m) => sum + m.representations.length, 0);
  const data = response.data as Record<string, unknown> | null | undefined;
  const entities = data?._entities;
  if (data && (!Array.isArray(entities) || entities.length !== total)) {
    const error: GraphQLErrorLike = {
      message: `The ${subgraph} service answered ${Array.isArray(entities) ? entities.length : 'no'} entities for ${total} representations.`,
      extensions: { code: 'SUBGRAPH_INVALID_RESPONSE', serviceName: subgraph },
    };
    for (const member of group) member.resolve({ data: null, errors: [...(response.errors ?? []), error] });
    return;
  }
  let offset = 0;
  for (const member of group) {
    const from = offset;
    const to = offset + member.representations.length;
    offset = to;
    const errors = response.errors?.flatMap((e): GraphQLErrorLike[] => {
      const index = e.path?.[0] === '_entities' ? e.path[1] : undefined;
      if (typeof index !== 'number') return [e];
      if (index < from || index >= to) return [];
      return [{ ...e, path: ['_entities', index - from, ...e.path!.slice(2)] }];
    });
    member.resolve({
      ...(response.extensions === undefined ? {} : { extensions: response.extensions }),
      ...(data === undefined ? {} : { data: data === null ? null : { ...data, _entities: (entities as unknown[]).slice(from, to) } }),
      ...(errors && errors.length > 0 ? { errors } : {}),
    });
  }
}
