import { CombinedGraphQLErrors, ServerError } from '@apollo/client/errors';

/** What went wrong, by the API's error code (`extensions.code`), with its message. */
export interface ShownError {
  code: string;
  message: string;
  /** Worth sending the same request again (with the same idempotency key, for placeOrder). */
  retryable: boolean;
}

const RETRYABLE = new Set(['NETWORK_ERROR', 'SUBGRAPH_UNAVAILABLE', 'SERVICE_UNAVAILABLE', 'RATE_LIMITED', 'HTTP_502', 'HTTP_503', 'HTTP_504']);

export function shownError(error: unknown): ShownError {
  let code = 'NETWORK_ERROR';
  let message = error instanceof Error ? error.message : String(error);
  if (CombinedGraphQLErrors.is(error)) {
    const first = error.errors[0];
    code = typeof first?.extensions?.code === 'string' ? first.extensions.code : 'INTERNAL_SERVER_ERROR';
    message = first?.message ?? message;
  } else if (ServerError.is(error)) {
    code = `HTTP_${error.statusCode}`;
    try {
      const body = JSON.parse(error.bodyText) as { errors?: { message: string; extensions?: { code?: string } }[] };
      const first = body.errors?.[0];
      if (first?.extensions?.code) code = first.extensions.code;
      if (first?.message) message = first.message;
    } catch {
      // Not a GraphQL body: the status says it.
    }
  }
  return { code, message, retryable: RETRYABLE.has(code) };
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const shown = shownError(error);
  return (
    <p className="error" role="alert" data-code={shown.code}>
      <strong>{shown.code}</strong> {shown.message}
    </p>
  );
}
