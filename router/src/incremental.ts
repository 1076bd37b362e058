import {
  DirectiveLocation,
  GraphQLBoolean,
  GraphQLDirective,
  GraphQLNonNull,
  GraphQLSchema,
  GraphQLString,
  type GraphQLError,
  type GraphQLFormattedError,
} from 'graphql';
import type { ApolloGateway } from '@apollo/gateway';
import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import type { GatewayInterface } from '@apollo/server-gateway-interface';
import type { RouterContext } from './context.js';
import type { DeferExecutor, SubsequentPayload } from './defer.js';
import { mentionsDefer } from './defer-document.js';

/** `@defer` as graphql-js 17 and the federation planner define it (graphql 16 has no such directive). */
export const GraphQLDeferDirective = new GraphQLDirective({
  name: 'defer',
  description: 'Sends the fragment in a later payload of a multipart/mixed response (deferSpec=20220824); in one answer otherwise.',
  locations: [DirectiveLocation.FRAGMENT_SPREAD, DirectiveLocation.INLINE_FRAGMENT],
  args: {
    if: { type: new GraphQLNonNull(GraphQLBoolean), defaultValue: true, description: 'Deferred only when true.' },
    label: { type: GraphQLString, description: 'Names the payloads of this fragment; unique in the operation.' },
  },
});

/** The API schema with `@defer`, so operations that use it validate (and introspection shows it). */
export function withDeferDirective(schema: GraphQLSchema): GraphQLSchema {
  if (schema.getDirective('defer')) return schema;
  const config = schema.toConfig();
  return new GraphQLSchema({ ...config, directives: [...config.directives, GraphQLDeferDirective] });
}

/**
 * Whether the client reads incremental payloads in the format this router writes: `multipart/mixed` with
 * `deferSpec=20220824` (what Apollo Client sends for an operation with `@defer`), not refused with `q=0`.
 */
export function acceptsIncrementalDelivery(accept: string | null | undefined): boolean {
  if (!accept || !accept.includes('deferSpec=20220824')) return false;
  return accept.split(',').some((range) => {
    const [type, ...params] = range.split(';').map((p) => p.trim().toLowerCase());
    if (type !== 'multipart/mixed' || !params.includes('deferspec=20220824')) return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/** How Apollo Server formats an error of the first payload, for the later ones. */
export type ErrorFormatter = (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;

function formatted(error: GraphQLError, format: ErrorFormatter): GraphQLFormattedError {
  const json = error.toJSON();
  return format({ ...json, extensions: { ...json.extensions, code: json.extensions?.code ?? 'INTERNAL_SERVER_ERROR' } }, error);
}

async function* formatPayloads(payloads: AsyncIterable<SubsequentPayload>, format: ErrorFormatter) {
  for await (const payload of payloads) {
    yield {
      ...payload,
      ...(payload.incremental
        ? { incremental: payload.incremental.map((item) => (item.errors ? { ...item, errors: item.errors.map((e) => formatted(e, format)) } : item)) }
        : {}),
    };
  }
}

/**
 * `@defer` over HTTP: a gateway in front of `@apollo/gateway` whose executor hands operations with `@defer`, from
 * clients that accept multipart/mixed (deferSpec=20220824), to the DeferExecutor, and a plugin that turns such an
 * answer into Apollo Server's incremental response, which it writes as multipart/mixed. Every other operation goes to
 * the gateway's executor untouched; one that uses `@defer` from a client without that Accept header is answered whole
 * in one response, as the gateway's planner (without defer support) ignores the directive. Parsing, validation, the
 * limits, the safelist, persisted queries, auth and the other plugins see the operation as they see any other.
 */
export class IncrementalDelivery {
  /** Later payloads by request context, from the executor to the plugin. */
  private readonly later = new WeakMap<object, AsyncIterable<SubsequentPayload>>();

  constructor(
    private readonly executor: DeferExecutor,
    private readonly format: ErrorFormatter,
  ) {}

  gateway(gateway: ApolloGateway): GatewayInterface {
    const schemas = new WeakMap<GraphQLSchema, GraphQLSchema>();
    const extended = (schema: GraphQLSchema) => {
      let result = schemas.get(schema);
      if (!result) {
        result = withDeferDirective(schema);
        schemas.set(schema, result);
      }
      return result;
    };
    return {
      onSchemaLoadOrUpdate: (callback) =>
        gateway.onSchemaLoadOrUpdate(({ apiSchema, coreSupergraphSdl }) => callback({ apiSchema: extended(apiSchema), coreSupergraphSdl })),
      load: async (options) => {
        const { executor } = await gateway.load(options);
        if (!executor) return { executor };
        return {
          executor: async (requestContext) => {
            if (acceptsIncrementalDelivery(requestContext.request.http?.headers.get('accept')) && mentionsDefer(requestContext.document)) {
              const run = await this.executor.execute(requestContext as Parameters<DeferExecutor['execute']>[0]);
              if (run) {
                if (run.subsequent) this.later.set(requestContext.context, run.subsequent);
                return run.initial;
              }
            }
            return executor(requestContext);
          },
        };
      },
      stop: () => gateway.stop(),
    };
  }

  /** Swaps the single result for the incremental one once execution ends, before any plugin's willSendResponse. */
  plugin(): ApolloServerPlugin<RouterContext> {
    const later = this.later;
    const format = this.format;
    const listener: GraphQLRequestListener<RouterContext> = {
      async executionDidStart({ contextValue, request, response }) {
        // Before execution: only requests that may be answered incrementally get a listener.
        if (!acceptsIncrementalDelivery(request.http?.headers.get('accept'))) return;
        return {
          async executionDidEnd(error) {
            const payloads = later.get(contextValue);
            later.delete(contextValue);
            const body = response.body;
            if (error || !payloads || body?.kind !== 'single') return;
            response.body = {
              kind: 'incremental',
              initialResult: { ...body.singleResult, hasNext: true },
              subsequentResults: formatPayloads(payloads, format),
            };
          },
        };
      },
    };
    return { requestDidStart: () => Promise.resolve(listener) };
  }
}
