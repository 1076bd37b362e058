import { GraphQLError } from 'graphql';
import { ApolloServerErrorCode } from '@apollo/server/errors';

/**
 * Error codes the graph uses in `extensions.code`, shared by every subgraph (and the router). Codes of one package
 * only live in that package (e.g. orders' `INVALID_TRANSITION`, the router's limits) and join these in its
 * production formatter (see `formatError`).
 */
export const ErrorCode = {
  BadUserInput: 'BAD_USER_INPUT',
  NotFound: 'NOT_FOUND',
  Conflict: 'CONFLICT',
  /** Not logged in, or a token or identity that does not verify. */
  Unauthenticated: 'UNAUTHENTICATED',
  /** Logged in, but not allowed. */
  Forbidden: 'FORBIDDEN',
  /** A request that is not GraphQL over HTTP (body not JSON, ...). */
  BadRequest: 'BAD_REQUEST',
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  /** Too many attempts (requests, failed logins): retry after `extensions.retryAfter` seconds. */
  RateLimited: 'RATE_LIMITED',
  /** A dependency (the database) is down for now; the same request may succeed in a few seconds. */
  ServiceUnavailable: 'SERVICE_UNAVAILABLE',
  /** Masked: whatever was not meant for a client. Not public. */
  Internal: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Apollo Server's codes for a client's protocol mistakes (unparsable, invalid, unknown operation, ...). */
export const PROTOCOL_ERROR_CODES: readonly string[] = [
  ApolloServerErrorCode.GRAPHQL_PARSE_FAILED,
  ApolloServerErrorCode.GRAPHQL_VALIDATION_FAILED,
  ApolloServerErrorCode.BAD_REQUEST,
  ApolloServerErrorCode.BAD_USER_INPUT,
  ApolloServerErrorCode.PERSISTED_QUERY_NOT_FOUND,
  ApolloServerErrorCode.PERSISTED_QUERY_NOT_SUPPORTED,
  ApolloServerErrorCode.OPERATION_RESOLUTION_FAILURE,
];

/** Every shared code a client may see in production: all of `ErrorCode` but INTERNAL_SERVER_ERROR, and Apollo's. */
export const COMMON_PUBLIC_CODES: readonly string[] = [
  ...Object.values(ErrorCode).filter((code) => code !== ErrorCode.Internal),
  ...PROTOCOL_ERROR_CODES,
];

/** Invalid input: names the offending field so a frontend can point at it. */
export function badInput(field: string, message: string): GraphQLError {
  return new GraphQLError(`${field}: ${message}`, {
    extensions: { code: ErrorCode.BadUserInput, field },
  });
}

export function notFound(what: string, id: string): GraphQLError {
  return new GraphQLError(`${what} ${id} does not exist`, {
    extensions: { code: ErrorCode.NotFound, id },
  });
}

/** PostgreSQL unique violation (SQLSTATE 23505), from either driver. */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}
