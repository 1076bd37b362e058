import { GraphQLError } from 'graphql';

/** Error codes the graph uses in `extensions.code`. */
export const ErrorCode = {
  BadUserInput: 'BAD_USER_INPUT',
  NotFound: 'NOT_FOUND',
  Conflict: 'CONFLICT',
  Internal: 'INTERNAL_SERVER_ERROR',
  /** A dependency (the database) is down for now; the same request may succeed in a few seconds. */
  ServiceUnavailable: 'SERVICE_UNAVAILABLE',
} as const;

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
