import { readFileSync } from 'node:fs';
import { parse, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { ApolloServer, type BaseContext } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { ErrorCode } from './errors.js';
import { databaseUnavailableCause } from './database-unavailable.js';
import { operationSpanPlugin } from './telemetry.js';

type LegacyModule = Extract<Parameters<typeof buildSubgraphSchema>[0], { resolvers?: unknown }>;

/** Reads a schema file that sits next to the module that asks for it. */
export function loadSchema(url: URL): string {
  return readFileSync(url, 'utf8');
}

const KNOWN_CODES = new Set<string>([
  ErrorCode.BadUserInput,
  ErrorCode.NotFound,
  ErrorCode.Conflict,
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'SUBGRAPH_UNAVAILABLE',
  ErrorCode.ServiceUnavailable,
  'INVALID_TRANSITION',
  'SUBSCRIPTION_SCHEMA_RELOADED',
  'SUBSCRIPTION_FAILED',
  // The router's operation limits.
  'QUERY_TOO_DEEP',
  'QUERY_TOO_COMPLEX',
  'TOO_MANY_ALIASES',
  'TOO_MANY_ROOT_FIELDS',
  'TOO_MANY_TOKENS',
]);

/**
 * In production, errors that are not deliberate client errors lose their message
 * and details, so SQL, stack traces and host names never reach a client. A database that is down or restarting
 * (a DatabaseUnavailableError behind the error) is SERVICE_UNAVAILABLE with a retry hint, in every mode.
 */
export function formatError(production: boolean) {
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
    if (typeof code === 'string' && KNOWN_CODES.has(code)) {
      const { stacktrace: _omit, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions };
    }
    return {
      message: 'Internal server error',
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: ErrorCode.Internal },
    };
  };
}

export interface SubgraphServerOptions {
  schema: string;
  /** Resolvers, typed by the generated types where they are written. */
  resolvers: object;
  production: boolean;
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
  const server = new ApolloServer<TContext>({
    schema,
    introspection: !options.production,
    // No "Did you mean ...?" in production: with introspection off, suggestions would still spell the schema out.
    hideSchemaDetailsFromClientErrors: options.production,
    includeStacktraceInErrorResponses: !options.production,
    formatError: formatError(options.production),
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
