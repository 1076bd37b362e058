import { Kind, parse, type DocumentNode } from 'graphql';
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import { IDENTITY_HEADER, REQUEST_ID_HEADER, injectTraceContext } from '@shop/common';
import type { RouterContext } from './context.js';
import { CircuitOpenError } from './resilience.js';

export const SUBGRAPH_UNAVAILABLE = 'SUBGRAPH_UNAVAILABLE';

/** The fetch's document: the planner only hands it over when asked to, so parse the text (only on failure). */
function documentOf(document: DocumentNode | undefined, query: string | undefined): DocumentNode | undefined {
  if (document || !query) return document;
  try {
    return parse(query);
  } catch {
    return undefined;
  }
}

/**
 * The GraphQL answer inside a subgraph's 4xx response (the gateway throws on any non-2xx status): a subgraph that
 * refuses a request (400 validation, 413) is up, and its own errors are what the client needs. Not 401: through the
 * router that means the subgraph does not trust the router's identity header (a misconfigured IDENTITY_SECRET), which
 * is the service's fault, not the client's, so it stays SUBGRAPH_UNAVAILABLE.
 */
function refusalOf(error: unknown): GatewayGraphQLResponse | undefined {
  const extensions = (error as { extensions?: { response?: { status?: unknown; body?: unknown } } } | null)?.extensions;
  const response = extensions?.response;
  const status = typeof response?.status === 'number' ? response.status : 0;
  const body = response?.body as GatewayGraphQLResponse | undefined;
  if (status < 400 || status >= 500 || status === 401 || !Array.isArray(body?.errors)) return undefined;
  return { ...(body.data === undefined ? {} : { data: body.data }), errors: body.errors };
}

/** Response keys of the root fields an operation selects (aliases win). */
function rootResponseKeys(document: DocumentNode | undefined): string[] {
  const operation = document?.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (!operation || operation.kind !== Kind.OPERATION_DEFINITION) return [];
  return operation.selectionSet.selections.flatMap((s) => (s.kind === Kind.FIELD ? [(s.alias ?? s.name).value] : []));
}

/**
 * Subgraph fetches: keep-alive connections and the client's request id on every
 * call. A subgraph that cannot be reached (refused, reset, timed out, 5xx)
 * becomes GraphQL errors on exactly the paths it would have filled, so the
 * gateway returns everything else: `_entities` errors are mapped by the gateway
 * to each entity's place in the response.
 */
export class SubgraphDataSource extends RemoteGraphQLDataSource<RouterContext> {
  constructor(
    readonly name: string,
    config: ConstructorParameters<typeof RemoteGraphQLDataSource<RouterContext>>[0],
    private readonly observe?: (subgraph: string, outcome: 'ok' | 'error' | 'unavailable', seconds: number) => void,
  ) {
    super(config);
  }

  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<RouterContext>): void {
    if (context.requestId) request.http?.headers.set(REQUEST_ID_HEADER, context.requestId);
    // The verified caller, signed for this subgraph only; anonymous requests carry none.
    const identity = context.identityFor?.(this.name);
    if (identity) request.http?.headers.set(IDENTITY_HEADER, identity);
    // Called inside the gateway's fetch span: the subgraph's server span becomes its child.
    if (request.http) injectTraceContext(request.http.headers);
  }

  override async process(options: GraphQLDataSourceProcessOptions<RouterContext>): Promise<GatewayGraphQLResponse> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const response = await super.process(options);
      this.observe?.(this.name, response.errors ? 'error' : 'ok', seconds());
      return response;
    } catch (error) {
      const refusal = refusalOf(error);
      this.observe?.(this.name, refusal ? 'error' : 'unavailable', seconds());
      // Health checks and schema loading keep their own error handling.
      if (!('incomingRequestContext' in options)) throw error;
      if (refusal) return refusal;
      const message = this.unavailableMessage(error);
      // An open breaker was logged once when it opened; one line per refused fetch would flood the log.
      if (error instanceof CircuitOpenError) options.context.log?.debug({ subgraph: this.name }, 'subgraph fetch refused: breaker open');
      else options.context.log?.warn({ err: error, subgraph: this.name }, 'subgraph fetch failed');
      const extensions = { code: SUBGRAPH_UNAVAILABLE, serviceName: this.name };
      const representations = options.request.variables?.representations;
      const paths = Array.isArray(representations)
        ? representations.map((_, i) => ['_entities', i])
        : rootResponseKeys(documentOf(options.document, options.request.query)).map((key) => [key]);
      return { errors: (paths.length > 0 ? paths : [undefined]).map((path) => ({ message, path, extensions })) };
    }
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
