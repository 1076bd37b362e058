import { readFileSync } from 'node:fs';
import { isUnionType, parse, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { ApolloServer, type BaseContext } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { COMMON_PUBLIC_CODES, ErrorCode, badInput } from './errors.js';
import { databaseUnavailableCause } from './database-unavailable.js';
import { operationSpanPlugin } from './telemetry.js';

type LegacyModule = Extract<Parameters<typeof buildSubgraphSchema>[0], { resolvers?: unknown }>;

/** Reads a schema file that sits next to the module that asks for it. */
export function loadSchema(url: URL): string {
  return readFileSync(url, 'utf8');
}

/**
 * A message without graphql's hints at the schema ("Did you mean "order" or "orders"?"), as Apollo Server's
 * `hideSchemaDetailsFromClientErrors` removes them from validation errors.
 */
export function withoutSuggestions(message: string): string {
  return message.replace(/ ?Did you mean(.+?)\?$/, '');
}

/**
 * In production, errors that are not deliberate client errors lose their message
 * and details, so SQL, stack traces and host names never reach a client. A database that is down or restarting
 * (a DatabaseUnavailableError behind the error) is SERVICE_UNAVAILABLE with a retry hint, in every mode.
 *
 * The public codes are the shared ones (`COMMON_PUBLIC_CODES`) and the lists of the caller's own package
 * (`publicCodes`): each code has one home, so it cannot be public in one place and masked in another.
 */
export function formatError(production: boolean, publicCodes: Iterable<string> = []) {
  const known = new Set<string>([...COMMON_PUBLIC_CODES, ...publicCodes]);
  return (formatted: GraphQLFormattedError, error?: unknown): GraphQLFormattedError => {
    const unavailable = error === undefined ? undefined : databaseUnavailableCause(error);
    if (unavailable) {
      const { stacktrace, ...rest } = formatted.extensions ?? {};
      return {
        message: unavailable.clientMessage,
        ...(formatted.locations ? { locations: formatted.locations } : {}),
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: {
          ...(production ? {} : { ...rest, stacktrace }),
          code: ErrorCode.ServiceUnavailable,
          retryAfterSeconds: unavailable.retryAfterSeconds,
        },
      };
    }
    const code = formatted.extensions?.code;
    if (!production) return formatted;
    if (typeof code === 'string' && known.has(code)) {
      const { stacktrace: _omit, ...extensions } = formatted.extensions ?? {};
      // Variable and enum errors make suggestions too, outside validation (where hideSchemaDetailsFromClientErrors acts).
      return { ...formatted, message: withoutSuggestions(formatted.message), extensions };
    }
    return {
      message: 'Internal server error',
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: ErrorCode.Internal },
    };
  };
}

/**
 * `_entities` refuses representations that name no entity of this subgraph (or no type at all) with BAD_USER_INPUT,
 * as the client's mistake it is; @apollo/subgraph would fail with an internal error and a stack trace.
 */
function checkRepresentations(schema: GraphQLSchema): void {
  const field = schema.getQueryType()?.getFields()._entities;
  const union = schema.getType('_Entity');
  if (!field?.resolve || !isUnionType(union)) return;
  const entities = new Set(union.getTypes().map((t) => t.name));
  const resolve = field.resolve;
  field.resolve = (source, args: { representations?: unknown }, context, info) => {
    const representations = Array.isArray(args.representations) ? args.representations : [];
    for (const [i, representation] of representations.entries()) {
      const typename = (representation as { __typename?: unknown } | null)?.__typename;
      if (typeof typename !== 'string' || !entities.has(typename)) {
        throw badInput(
          `representations[${i}].__typename`,
          typeof typename === 'string' ? `"${typename.slice(0, 100)}" is not an entity type of this subgraph` : 'is missing',
        );
      }
    }
    return resolve(source, args, context, info);
  };
}

export interface SubgraphServerOptions {
  schema: string;
  /** Resolvers, typed by the generated types where they are written. */
  resolvers: object;
  production: boolean;
  /** The subgraph's own public error codes (beyond `COMMON_PUBLIC_CODES`), kept in production. */
  publicCodes?: readonly string[];
}

const schemas = new WeakMap<object, GraphQLSchema>();

/** The executable schema a subgraph server was built with (for serving subscriptions beside it). */
export function schemaOf(server: object): GraphQLSchema | undefined {
  return schemas.get(server);
}

export function createSubgraphServer<TContext extends BaseContext>(options: SubgraphServerOptions): ApolloServer<TContext> {
  const schema = buildSubgraphSchema({
    typeDefs: parse(options.schema),
    resolvers: options.resolvers as LegacyModule['resolvers'],
  });
  checkRepresentations(schema);
  const server = new ApolloServer<TContext>({
    schema,
    introspection: !options.production,
    // No "Did you mean ...?" in production: with introspection off, suggestions would still spell the schema out.
    hideSchemaDetailsFromClientErrors: options.production,
    includeStacktraceInErrorResponses: !options.production,
    formatError: formatError(options.production, options.publicCodes),
    // runSubgraph stops gracefully on SIGTERM; Apollo's own handler would stop the server under in-flight requests.
    stopOnTerminationSignals: false,
    // No Studio reporting from subgraphs, so no inline traces to compute.
    plugins: [
      ApolloServerPluginInlineTraceDisabled(),
      // No field sets a cache hint, and the plugin wraps every field's resolver to collect them.
      ApolloServerPluginCacheControlDisabled(),
      operationSpanPlugin<TContext>(),
      ...(options.production ? [ApolloServerPluginLandingPageDisabled()] : []),
    ],
  });
  schemas.set(server, schema);
  return server;
}
