import { Kind, parse, type DocumentNode } from 'graphql';
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import { IDENTITY_HEADER, REQUEST_ID_HEADER, injectTraceContext } from '@shop/common';
import type { RouterContext } from './context.js';
import { CircuitOpenError, type SubgraphAnswer, type SubgraphResilience } from './resilience.js';
import { ENTITY_CACHE_HEADER } from '@shop/common';
import type { EntityCache, EntityFetchAnswer } from './entity-cache.js';

import { RouterErrorCode } from './error-codes.js';

export const SUBGRAPH_UNAVAILABLE = RouterErrorCode.SubgraphUnavailable;

/** The fetch's document: the planner only hands it over when asked to, so parse the text (only on failure). */
function documentOf(document: DocumentNode | undefined, query: string | undefined): DocumentNode | undefined {
  if (document || !query) return document;
  try {
    return parse(query);
  } catch {
    return undefined;
  }
}

/** Response keys of the root fields an operation selects (aliases win). */
function rootResponseKeys(document: DocumentNode | undefined): string[] {
  const operation = document?.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (!operation || operation.kind !== Kind.OPERATION_DEFINITION) return [];
  return operation.selectionSet.selections.flatMap((s) => (s.kind === Kind.FIELD ? [(s.alias ?? s.name).value] : []));
}

type ProcessOptions = GraphQLDataSourceProcessOptions<RouterContext>;
type IncomingOperation = Extract<ProcessOptions, { incomingRequestContext: unknown }>;

/** A fetch for a client's operation (not a health check or schema loading). */
function isIncoming(options: ProcessOptions): options is IncomingOperation {
  return 'incomingRequestContext' in options;
}

/** Only operations that read are retried or shared; anything unclear counts as a write. */
export function isQueryText(query: string): boolean {
  return /^\s*(\{|query\b)/.test(query);
}

/** A subgraph answer the router cannot use: not JSON, or an HTTP status outside 2xx. */
export class SubgraphResponseError extends Error {
  override name = 'SubgraphResponseError';
  constructor(
    message: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    super(message);
  }
}

function bodyOf(answer: SubgraphAnswer): unknown {
  const type = answer.headers.get('content-type') ?? '';
  if (type.startsWith('application/json') || type.startsWith('application/graphql-response+json')) return JSON.parse(answer.body);
  return answer.body;
}

/**
 * The GraphQL answer inside a subgraph's 4xx response: a subgraph that refuses a request (400 validation, 413) is up,
 * and its own errors are what the client needs. Not 401: through the router that means the subgraph does not trust
 * the router's identity header (a misconfigured IDENTITY_SECRET), which is the service's fault, not the client's,
 * so it stays SUBGRAPH_UNAVAILABLE.
 */
function refusalOf(error: unknown): GatewayGraphQLResponse | undefined {
  if (!(error instanceof SubgraphResponseError) || error.status < 400 || error.status >= 500 || error.status === 401) return undefined;
  const body = error.body as GatewayGraphQLResponse | undefined;
  if (!Array.isArray(body?.errors)) return undefined;
  return { ...(body.data === undefined ? {} : { data: body.data }), errors: body.errors };
}

/** The `Cache-Control` hint of a subgraph answer, as Apollo Server's cache control reads it. */
function cacheHintOf(header: string | undefined): { maxAge: number; scope?: 'PUBLIC' | 'PRIVATE' } {
  const hint: { maxAge: number; scope?: 'PUBLIC' | 'PRIVATE' } = { maxAge: 0 };
  if (!header) return hint;
  for (const part of header.split(',')) {
    const [key, value] = part.trim().split(/\s*=\s*/, 2) as [string, string | undefined];
    const name = key.toLowerCase();
    if (name === 'max-age' && value && /^[0-9]+$/.test(value.replace(/^"|"$/g, ''))) hint.maxAge = Number(value.replace(/^"|"$/g, ''));
    else if (name === 'private') hint.scope = 'PRIVATE';
    else if (name === 'public') hint.scope = 'PUBLIC';
  }
  return hint;
}

/**
 * The router's subgraph fetches. It sends each fetch itself (one JSON body, plain header objects) through the
 * resilience layer on keep-alive connections, with the client's request id, the caller's identity signed for this
 * subgraph, and the trace context. (`RemoteGraphQLDataSource` builds node-fetch `Headers` and `Request` objects per
 * fetch, 4 to 5% of the router's CPU per request in profiles.) A subgraph that cannot be reached (refused, reset,
 * timed out, 5xx) becomes GraphQL errors on exactly the paths it would have filled, so the gateway returns
 * everything else: `_entities` errors are mapped by the gateway to each entity's place in the response.
 */
export class SubgraphDataSource implements GraphQLDataSource<RouterContext> {
  constructor(
    readonly name: string,
    readonly url: string,
    private readonly resilience: SubgraphResilience,
    private readonly observe?: (subgraph: string, outcome: 'ok' | 'error' | 'unavailable', seconds: number) => void,
    private readonly entityCache?: EntityCache,
  ) {}

  async process(options: ProcessOptions): Promise<GatewayGraphQLResponse> {
    const query = options.request.query;
    if (this.entityCache && isIncoming(options) && query && isQueryText(query) && Array.isArray(options.request.variables?.representations)) {
      return this.entityCache.process(this.name, options, (sent) => this.fetch(sent));
    }
    return (await this.fetch(options)).response;
  }

  /** One fetch from the subgraph; failures of a client's operation become GraphQL errors on the paths it would fill. */
  private async fetch(options: ProcessOptions): Promise<EntityFetchAnswer> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const answer = await this.send(options);
      this.observe?.(this.name, answer.response.errors ? 'error' : 'ok', seconds());
      return answer;
    } catch (error) {
      const refusal = refusalOf(error);
      this.observe?.(this.name, refusal ? 'error' : 'unavailable', seconds());
      // Health checks and schema loading keep their own error handling.
      if (!isIncoming(options)) throw error;
      if (refusal) return { response: refusal, announced: undefined };
      const message = this.unavailableMessage(error);
      // An open breaker was logged once when it opened; one line per refused fetch would flood the log.
      if (error instanceof CircuitOpenError) options.context.log?.debug({ subgraph: this.name }, 'subgraph fetch refused: breaker open');
      else options.context.log?.warn({ err: error, subgraph: this.name }, 'subgraph fetch failed');
      const extensions = { code: SUBGRAPH_UNAVAILABLE, serviceName: this.name };
      const representations = options.request.variables?.representations;
      const paths = Array.isArray(representations)
        ? representations.map((_, i) => ['_entities', i])
        : rootResponseKeys(documentOf(options.document, options.request.query)).map((key) => [key]);
      return { response: { errors: (paths.length > 0 ? paths : [undefined]).map((path) => ({ message, path, extensions })) }, announced: undefined };
    }
  }

  private async send(options: ProcessOptions): Promise<EntityFetchAnswer> {
    const { request } = options;
    const query = request.query;
    if (!query) throw new Error('Missing query');
    const headers: Record<string, string> = {};
    // Headers the gateway asks for (e.g. federated tracing), then ours.
    if (request.http) for (const [name, value] of request.http.headers) headers[name.toLowerCase()] = value;
    headers['content-type'] = 'application/json';
    if (isIncoming(options)) {
      const { context } = options;
      if (context.requestId) headers[REQUEST_ID_HEADER] = context.requestId;
      // The verified caller, signed for this subgraph only; anonymous requests carry none.
      const identity = context.identityFor?.(this.name);
      if (identity) headers[IDENTITY_HEADER] = identity;
      // Inside the gateway's fetch span: the subgraph's server span becomes its child.
      injectTraceContext({ set: (name: string, value: string) => (headers[name] = value) });
    }
    const body = JSON.stringify({
      query,
      ...(request.variables === undefined ? {} : { variables: request.variables }),
      ...(request.operationName == null ? {} : { operationName: request.operationName }),
      ...(request.extensions === undefined ? {} : { extensions: request.extensions }),
    });
    const answer = await this.resilience.send(this.name, this.url, headers, body, isQueryText(query));
    if (answer.status < 200 || answer.status > 299) {
      let parsed: unknown;
      try {
        parsed = bodyOf(answer);
      } catch {
        parsed = answer.body;
      }
      throw new SubgraphResponseError(`${answer.status}: ${answer.statusText}`, answer.status, parsed);
    }
    const parsed = bodyOf(answer);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new SubgraphResponseError(`Expected JSON response body, but received: ${String(parsed).slice(0, 200)}`, answer.status, parsed);
    }
    if (isIncoming(options)) {
      // As Apollo Server's cache control expects of a gateway: the answer's Cache-Control narrows the response's.
      const policy = options.incomingRequestContext.overallCachePolicy;
      if (policy && 'restrict' in policy) policy.restrict(cacheHintOf(answer.headers.get('cache-control')));
    }
    return { response: parsed as GatewayGraphQLResponse, announced: answer.headers.has(ENTITY_CACHE_HEADER) };
  }

  private unavailableMessage(error: unknown): string {
    if (error instanceof CircuitOpenError) {
      return `The ${this.name} service is unavailable (failing fast after repeated errors); the fields it provides are missing. Retry in a few seconds.`;
    }
    if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
      return `The ${this.name} service did not answer in time; the fields it provides are missing.`;
    }
    return `The ${this.name} service is unavailable; the fields it provides are missing.`;
  }
}
