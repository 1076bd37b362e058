import { GraphQLError, Kind, type DocumentNode, type GraphQLFormattedError } from 'graphql';
import { ApolloServerErrorCode } from '@apollo/server/errors';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { ErrorCode } from '@shop/common';

/**
 * Why no operation of `document` can run under `operationName` (graphql's `getOperationAST` found none)
 */
export function operationResolutionError(document: DocumentNode, operationName: string | null | undefined): GraphQLError {
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  const message =
    operations.length === 0
      ? 'The document has no operation to run.'
      : operationName
        ? `Unknown operation named "${operationName}": the document has ${operations
            .map((o) => (o.name ? `"${o.name.value}"` : 'an anonymous operation'))
            .join(', ')}.`
        : 'Must provide operation name if query contains multiple operations.';
  return new GraphQLError(message, { extensions: { code: ApolloServerErrorCode.OPERATION_RESOLUTION_FAILURE, http: { status: 400 } } });
}

export function subscriptionOverHttpError(): GraphQLError {
  return new GraphQLError('Subscriptions are served over WebSocket (graphql-ws, the graphql-transport-ws protocol) at this path, not over HTTP.', {
    extensions: { code: ErrorCode.BadRequest, http: { status: 400 } },
  });
}

/**
 * Client mistakes the gateway would answer with a 500 (an `operationName` that names no operation, several operations
 * and no name, a subscription over HTTP): refused with 400 and a code before anything is planned.
 */
export function clientErrorsPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, document, request }) {
          if (!operation) throw operationResolutionError(document, request.operationName);
          if (operation.operation === 'subscription') throw subscriptionOverHttpError();
        },
      };
    },
  };
}

/**
 * For `formatError`: an error Apollo Server answers with a 4xx status but no code of its own (e.g. "provided sha does
 * not match query", INTERNAL_SERVER_ERROR with HTTP 400) is the client's mistake: BAD_REQUEST, so production keeps it.
 */
export function clientErrorFormatter(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  if (formatted.extensions?.code !== ErrorCode.Internal || !(error instanceof GraphQLError)) return formatted;
  const status = (error.extensions?.http as { status?: unknown } | undefined)?.status;
  if (typeof status !== 'number' || status < 400 || status >= 500) return formatted;
  return { ...formatted, extensions: { ...formatted.extensions, code: ErrorCode.BadRequest } };
}
